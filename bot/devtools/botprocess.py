"""``python -m bot run`` as a process of its own, beside the local emulator: for the
tests and benchmarks that need a real bot process (several processes on one
database, a process SIGKILLed, the CPU of the bot alone). Its output goes to a log
file in the working folder, which :meth:`BotProcess.wait_for` reads."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123:local-emulator"  # the emulator accepts any token of this shape


def bot_env(**extra: str) -> dict[str, str]:
    """The environment of a bot process: the emulator's token, this checkout's code
    first on the path (whatever the working folder), no crash point unless ``extra``
    sets one (``SOPBOT_CRASH_AT``)."""
    env = dict(os.environ, SOPBOT_TELEGRAM_TOKEN=TOKEN)
    env.pop("SOPBOT_CRASH_AT", None)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def process_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` used so far (user + system), from /proc; 0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def ended(proc: subprocess.Popen, log, timeout: float = 30) -> int:
    """Wait for ``proc`` to end (SIGKILL after ``timeout``), close its ``log``; returns
    the exit code."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
    finally:
        log.close()


class BotProcess:
    """Bot process ``n`` with ``config`` in folder ``cwd`` (its log ``bot{n}.log``
    there). ``receive=False``: it processes and sends but does not poll; ``crash``: a
    crash point (``bot/devtools/crashpoints.py``); ``verbose``: debug logging."""

    def __init__(self, n: int, config: Path, cwd: Path, *, receive: bool = True,
                 crash: str = "", verbose: bool = False) -> None:
        env = bot_env(**({"SOPBOT_CRASH_AT": crash} if crash else {}))
        self.log_path = Path(cwd) / f"bot{n}.log"
        self.log = open(self.log_path, "w")
        args = [sys.executable, "-m", "bot", "--config", str(config)] \
            + (["-v"] if verbose else []) + ["run", "--no-upgrade"] \
            + ([] if receive else ["--no-receive"])
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def name(self) -> str:
        """The process's name among the processes of a database (PostgreSQL)."""
        found = re.search(r"process (\S+) holds its life lock", self.text())
        return found.group(1) if found else ""

    def wait_for(self, pattern: str, timeout: float) -> None:
        """Until ``pattern`` is in the log; raises when the process ends first or
        ``timeout`` passes."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, self.text()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the bot's log:\n{self.text()[-3000:]}")

    def cpu(self) -> float:
        """CPU seconds used so far (user + system)."""
        return process_cpu(self.proc.pid)

    def stop(self) -> int:
        """SIGINT (a clean stop), SIGKILL after 30 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return ended(self.proc, self.log)
