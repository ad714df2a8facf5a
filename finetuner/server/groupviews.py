"""What the page shows of a group: a comparison's (or learning curve's) members and summary, a
search's trials, and finished runs put side by side from Your runs. A mixin of
`groups.Groups` (it reads the group folder through `self.folder`); reading only."""

from __future__ import annotations

from pathlib import Path

from finetuner.errors import FinetunerError
from finetuner.runs import RunPaths, read_json
from finetuner.server.compare import member_row, summarize
from finetuner.tasks import DEFAULT_TASK


class GroupViews:
    def compare_view(self, ws, folder: Path) -> dict:
        meta = read_json(folder / "group.json") or {}
        budget = meta.get("budget") or {}
        rows = []
        for name, run_id in (meta.get("members") or {}).items():
            run = RunPaths(ws.runs_dir / run_id)
            if run.config.exists():
                row = member_row(name, run)
                row["status"] = ws.status(run)
                row["run"] = run_id  # never a server path on the page
                rows.append(row)
        waiting = [n for n in meta.get("planned") or [] if n not in (meta.get("members") or {})]
        summary = summarize(rows, budget.get("minutes"), budget.get("memory_mb"),
                            expected=len(rows) + len(waiting))
        out = {"meta": meta, "summary": summary, "waiting": waiting}
        if meta.get("kind") == "curve":  # no winner: what more data would buy
            from finetuner.server import learning_curve
            from finetuner.tasks import get_task

            title = get_task((meta.get("base") or {}).get("task") or DEFAULT_TASK)
            out["curve"] = learning_curve.analyse(rows, title.metric_title,
                                                  expected=len(rows) + len(waiting))
            summary["winner"], summary["sentence"] = None, out["curve"]["sentence"]
        return out

    def search_view(self, ws, folder: Path) -> dict:
        from finetuner.server.search import Search

        meta = read_json(folder / "group.json") or {}
        summary = Search(folder, readonly=True).summary()
        for row in summary["trials"]:
            row["run"] = Path(row["run"]).name if row.get("run") else None
        final = summary.get("final") or {}
        if final.get("run"):
            final["run"] = Path(final["run"]).name
        if summary.get("final_run"):
            summary["final_run"] = Path(summary["final_run"]).name
        return {"meta": meta, "summary": summary, "log": _tail(folder / "search.log", 8)}

    def view(self, ws, group_id: str) -> dict:
        folder = self.folder(ws, group_id)
        meta = read_json(folder / "group.json") or {}
        if meta.get("kind") == "search":
            return {"kind": "search", "id": group_id, **self.search_view(ws, folder)}
        kind = "curve" if meta.get("kind") == "curve" else "compare"
        return {"kind": kind, "id": group_id, **self.compare_view(ws, folder)}

    def side_by_side(self, ws, run_ids: list[str]) -> dict:
        """Finished runs of the same data put side by side (from Your runs): the same summary
        as a comparison, refused when the runs were not trained on identical splits."""
        if len(run_ids or []) < 2:
            raise FinetunerError("Select two or more runs to compare.", code="bad_setting")
        rows = []
        for run_id in run_ids:
            run = ws.run(run_id)
            row = member_row(ws.name_of(run), run)
            row["status"] = ws.status(run)
            row["run"] = run.id
            rows.append(row)
        tasks = {(read_json(RunPaths(ws.runs_dir / r["run"]).config) or {}).get("task")
                 for r in rows}
        summary = summarize(rows)
        if len(tasks) > 1 or not summary["identical_splits"]:
            raise FinetunerError(
                "These runs were not trained and checked on the same data, so their scores "
                "cannot be compared.",
                "Select runs made from the same files and split settings (Compare methods "
                "on the Model & method tab makes such a group).", code="different_data")
        return {"kind": "runs", "meta": {"name": "selected runs"}, "summary": summary,
                "waiting": []}


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text("utf-8").splitlines()[-lines:])
    except OSError:
        return ""

