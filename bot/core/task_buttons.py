"""The button that takes a person straight to an open step (tasks, reminders)."""
from __future__ import annotations

from bot import callbacks
from bot.texts import t
from bot.core.workflow import Workflow
from models import StepRun


async def task_buttons(wf: Workflow, run: StepRun) -> list[list[tuple[str, str]]]:
    kind = wf.sop.step(run.step_no).kind
    if kind == "dispose":
        return [[(t("b.accept_forward"), callbacks.encode("dsp", run.id))]]
    if kind == "coordinate":
        return [[(t("b.coordinate"), callbacks.encode("crd", run.id))]]
    if kind == "collect":
        return [[(t("b.start_entry"), callbacks.encode("ent", run.id))]]
    if kind == "process":
        return [[(t("b.process_done"), callbacks.encode("proc", run.id))]]
    if kind == "compile":
        return [[(t("b.compile"), callbacks.encode("cmp", run.id))]]
    if kind in ("review", "sign"):
        doc = await wf.current_document(run.cycle_id)
        if doc is None:
            return []
        key, label = ("prf", "b.paraf") if kind == "review" else ("sgn", "b.sign")
        return [[(t(label), callbacks.encode(key, run.id, doc.id)),
                 (t("b.return"), callbacks.encode("ret", run.id, doc.id))]]
    if kind == "number":
        return [[(t("b.number"), callbacks.encode("num", run.id))]]
    if kind == "archive":
        return [[(t("b.archive"), callbacks.encode("arc", run.id))]]
    if kind == "deliver":
        return [[(t("b.deliver"), callbacks.encode("task", run.id))]]
    return []
