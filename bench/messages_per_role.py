"""Messages per role: how many messages each role receives in the demo cycle.

    python bench/messages_per_role.py [--out FOLDER] [--kinds]

Plays the demo cycle (``bot/devtools/demo.py`` with ``bot/devtools/scenario.py``, as ``sopbot demo`` does)
and counts, per role, the messages the bot put in the chats of that role's people
during the cycle (the welcome after registration is not counted): every message, the
files among them (documents and photos), the messages still in the chat at the end
(not deleted), the outbox rows that are messages (notifications; a row with files may
be several messages; not the rows that remove keyboards or record a direct answer) and,
of them, those not sent because they no longer applied when their turn came. ``--kinds`` adds the outbox rows per kind and role (issue 13, item 8: one
message per event per person).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def measure(out: Path) -> dict:
    from sqlalchemy import select

    from bot.devtools.demo import Demo, Progress
    from bot.core.outbox import DIRECT, REMOVE_KEYBOARD
    from models import Outbox, Person

    demo = Demo(out, quiet=True)
    demo.prepare()
    await demo.setup()
    try:
        await demo.h.settle()
        before = {pid: {m.message_id for m in u.messages} for pid, u in demo.h.users.items()}
        async with demo.sm() as s:
            first_row = (await s.execute(select(Outbox.id).order_by(Outbox.id.desc())
                                         .limit(1))).scalar() or 0
        await demo.run_cycle(Progress(11, io.StringIO()))
        await demo.h.settle()
        async with demo.sm() as s:
            roles = {p.id: str(p.role) for p in (await s.execute(select(Person))).scalars()}
            rows = (await s.execute(select(Outbox.person_id, Outbox.kind, Outbox.last_error)
                                    .where(Outbox.id > first_row))).all()
        table: dict[str, Counter] = defaultdict(Counter)
        for pid, user in demo.h.users.items():
            role = roles.get(pid, "?")
            table[role]["people"] += 1
            for m in user.messages:
                if m.message_id in before.get(pid, set()):
                    continue
                table[role]["messages"] += 1
                if m.document is not None or m.photo:
                    table[role]["files"] += 1
                if not m.deleted:
                    table[role]["kept"] += 1
        kinds: dict[str, Counter] = defaultdict(Counter)
        for pid, kind, error in rows:
            role = roles.get(pid, "?") if pid is not None else "-"
            kinds[role][kind] += 1
            if kind in (DIRECT, REMOVE_KEYBOARD):
                continue
            table[role]["outbox"] += 1
            if (error or "").startswith("not sent"):
                table[role]["unsent"] += 1
        return {"table": table, "kinds": kinds}
    finally:
        await demo.close()


ORDER = ["kadis", "sekretaris", "kasubag", "kabid", "staf", "kontak", "admin"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="demo folder (default: a new temporary folder)")
    parser.add_argument("--kinds", action="store_true", help="outbox rows per kind and role")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="sopbot-messages-")) / "demo"
    r = asyncio.run(measure(out))
    table = r["table"]
    roles = sorted(table, key=lambda k: (ORDER.index(k) if k in ORDER else 99, k))
    print("messages each role receives in the demo cycle (after registration)")
    print(f"{'role':<11}{'people':>7}{'messages':>10}{'per person':>12}{'files':>7}"
          f"{'kept':>6}{'outbox':>8}{'unsent':>8}")
    total = Counter()
    for role in roles:
        c = table[role]
        total.update(c)
        per = c["messages"] / c["people"] if c["people"] else 0
        print(f"{role:<11}{c['people']:>7}{c['messages']:>10}{per:>12.1f}{c['files']:>7}"
              f"{c['kept']:>6}{c['outbox']:>8}{c['unsent']:>8}")
    print(f"{'all':<11}{total['people']:>7}{total['messages']:>10}{'':>12}{total['files']:>7}"
          f"{total['kept']:>6}{total['outbox']:>8}{total['unsent']:>8}")
    if args.kinds:
        print("outbox rows per kind")
        for role in roles:
            for kind, n in sorted(r["kinds"][role].items()):
                print(f"  {role:<11}{kind:<28}{n:>4}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
