"""``sopbot emulator chat USER``: one person's chat with the bot, readable in a terminal.

For trying the bot by hand against the local emulator (``sopbot emulator``, or the
demo's with ``sopbot demo --keep-running``): the chat is printed as lines of text with
numbered buttons; a line typed is sent as that person's message, a number presses that
button, an empty line shows what came meanwhile, ``/keluar`` (or end of input) leaves.
It talks to the emulator's user API over HTTP only (``/_emu/users/...``).
"""
from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any, TextIO

WAIT = 3.0  # seconds to wait for the bot's answer after each message or press


class ChatError(Exception):
    """The emulator refused or did not answer."""


class Chat:
    def __init__(self, url: str, user_id: int, *, out: TextIO = sys.stdout,
                 wait: float = WAIT) -> None:
        self.url = url.rstrip("/")
        self.user_id = user_id
        self.out = out
        self.wait = wait
        self.seen: dict[int, str] = {}  # message id -> the state last printed
        self.buttons: list[tuple[int, str, str]] = []  # number-1 -> (message, label, data)
        self.last_mid: int | None = None  # the message changed last (the API's "after")

    # -- the user API ------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/_emu/users{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.wait + 30) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, OSError) as exc:
            raise ChatError(f"emulator di {self.url} tidak menjawab ({exc})") from None
        if not answer.get("ok"):
            raise ChatError(answer.get("description") or "ditolak emulator")
        return answer["result"]

    def ensure_user(self, first_name: str = "Pengguna") -> None:
        users = {u["id"] for u in self._call("GET", "")}
        if self.user_id not in users:
            self._call("POST", "", {"user_id": self.user_id, "first_name": first_name})

    def messages(self, *, wait: float = 0.0) -> list[dict]:
        query = f"?wait={wait}" + (f"&after={self.last_mid}" if self.last_mid else "")
        found = self._call("GET", f"/{self.user_id}/messages{query}")
        if found:
            self.last_mid = max(found, key=lambda m: m["seq"])["message_id"]
        return found

    # -- showing -------------------------------------------------------------------------
    def render(self, message: dict) -> str:
        """The message as lines; its buttons get the next numbers."""
        lines = []
        body = message.get("text") or message.get("caption") or ""
        if message.get("document"):
            lines.append(f"[berkas: {message['document'].get('file_name', 'dokumen')}]")
        if message.get("photo"):
            lines.append("[foto]")
        if body:
            lines.append(body)
        for row in (message.get("reply_markup") or {}).get("inline_keyboard") or []:
            cells = []
            for button in row:
                self.buttons.append((message["message_id"], button.get("text", ""),
                                     button.get("callback_data", "")))
                cells.append(f"[{len(self.buttons)}] {button.get('text', '')}")
            lines.append("   ".join(cells))
        return "\n".join(lines)

    @staticmethod
    def _state(message: dict) -> str:
        return json.dumps([message.get("text"), message.get("caption"),
                           message.get("reply_markup"), bool(message.get("document")),
                           bool(message.get("photo"))], sort_keys=True)

    def show(self, found: list[dict]) -> None:
        for message in found:
            mid = message["message_id"]
            if message.get("deleted"):
                if mid in self.seen:
                    print(f"-- pesan {mid} dihapus bot --", file=self.out)
                    self.seen.pop(mid)
                continue
            state = self._state(message)
            was = self.seen.get(mid)
            if state == was:
                continue
            head = f"== Bot, pesan {mid}" + (" (diubah)" if was is not None else "") + " =="
            print(f"{head}\n{self.render(message)}", file=self.out)
            self.seen[mid] = state
        self.out.flush()

    # -- acting ----------------------------------------------------------------------------
    def act(self, line: str) -> bool:
        """One line of input; False when the person leaves."""
        line = line.strip()
        if line in ("/keluar", "/exit"):
            return False
        if not line:
            self.show(self.messages())
            return True
        if line.isdigit() and 1 <= int(line) <= len(self.buttons):
            mid, label, data = self.buttons[int(line) - 1]
            print(f">> tekan [{label}]", file=self.out)
            self._call("POST", f"/{self.user_id}/press", {"message_id": mid, "data": data})
        else:
            print(f">> {line}", file=self.out)
            self._call("POST", f"/{self.user_id}/send", {"text": line})
        time.sleep(0.05)
        self.show(self.messages(wait=self.wait))
        return True

    def run(self, lines: TextIO) -> None:
        self.ensure_user()
        print(f"Obrolan pengguna {self.user_id} dengan bot di {self.url}. Ketik pesan, "
              "angka untuk menekan tombol, baris kosong untuk menyegarkan, /keluar untuk "
              "selesai.", file=self.out)
        self.show(self.messages())
        for line in lines:
            if not self.act(line):
                break


def main(url: str, user_id: int, *, lines: TextIO | None = None) -> int:
    try:
        Chat(url, user_id).run(lines if lines is not None else sys.stdin)
    except ChatError as exc:
        print(f"Gagal: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
