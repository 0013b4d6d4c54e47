"""Dead buttons: how many visible inline buttons are refused when pressed after a cycle.

    python bench/dead_buttons.py [--out FOLDER] [--list]

Plays the demo cycle (``bot/devtools/demo.py`` with ``bot/devtools/scenario.py``, as ``sopbot demo`` does:
the example office, the emulator, the bot, simulated people), then looks at every
person's chat in the emulator and presses every inline button that is still visible
(messages not deleted, callback buttons; URL buttons are not counted). A press is
*refused* when the bot answers it with an alert (every refusal goes through
``handlers.common._answer``: "Tombol ini sudah tidak berlaku.", "Langkah ini tidak dapat
dilakukan sekarang: ...", "Data tidak ditemukan.", ...), or with the stale-button text
as a short notice (a /tugas card of a closed step answers so). Prints the count (issue 13,
item 7: the target is 0) and the refusals by text; ``--list`` prints each dead button.

The buttons are listed once, before the first press, and pressed oldest first; a button
whose message lost its keyboard through an earlier press is counted as gone, not dead.
A press that works may change the state later presses meet (after a finished cycle,
nearly nothing still works, so this hardly matters; the figures say how many worked).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def _answer(user, qid: str, h, tries: int = 500):
    for _ in range(tries):
        answer = user.callback_answer(qid)
        if answer is not None:
            return answer
        await asyncio.sleep(0.02)
    await h.settle()
    return user.callback_answer(qid)


async def measure(out: Path, *, show: bool = False) -> dict:
    from bot.devtools.demo import Demo, Progress
    from bot.devtools.emulator import ButtonNotFound, SimGroup
    from bot.texts import t

    stale = t("err.stale_button")

    demo = Demo(out, quiet=True)
    demo.prepare()
    await demo.setup()
    try:
        await demo.run_cycle(Progress(11, io.StringIO()))
        await demo.h.settle()
        users = [u for u in demo.h.emulator.users if not isinstance(u, SimGroup)]
        visible = []  # (user, message_id, text, callback_data)
        for user in users:
            for msg in user.messages:
                if msg.deleted:
                    continue
                for b in msg.buttons:
                    if b.get("callback_data"):
                        visible.append((user, msg.message_id, str(b.get("text", "")),
                                        b["callback_data"]))
        dead, worked, gone = [], 0, 0
        reasons: Counter[str] = Counter()
        for user, message_id, text, data in visible:
            try:
                qid = await user.press(message_id, data=data)
            except ButtonNotFound:
                gone += 1
                continue
            answer = await _answer(user, qid, demo.h)
            await demo.h.settle()
            if answer is not None and (answer.show_alert or answer.text == stale):
                dead.append((user.first_name, message_id, text, answer.text or ""))
                reasons[answer.text or ""] += 1
            else:
                worked += 1
        if show:
            for name, message_id, text, why in dead:
                print(f"  {name} #{message_id} [{text}] -> {why}")
        return {"visible": len(visible), "dead": len(dead), "worked": worked, "gone": gone,
                "reasons": reasons, "people": len(users)}
    finally:
        await demo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="demo folder (default: a new temporary folder)")
    parser.add_argument("--list", action="store_true", help="print every dead button")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="sopbot-dead-buttons-")) / "demo"
    r = asyncio.run(measure(out, show=args.list))
    print(f"visible buttons after the demo cycle: {r['visible']} "
          f"in the chats of {r['people']} people")
    print(f"  worked when pressed: {r['worked']}")
    print(f"  gone before their turn (keyboard removed by an earlier press): {r['gone']}")
    for why, n in r["reasons"].most_common():
        print(f"  refused {n:>3} x {why!r}")
    print(f"dead buttons (visible, refused when pressed): {r['dead']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
