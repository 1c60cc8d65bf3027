"""The experiment tree: every step under the step it built on, as text and as a picture."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from dsassist.messages import StepSummary, Verdict

MARK = {Verdict.ACCEPTED: "kept", Verdict.REJECTED: "dropped", Verdict.FAILED: "failed", Verdict.DONE: "done"}
COLOR = {
    Verdict.ACCEPTED: "tab:green",
    Verdict.REJECTED: "tab:gray",
    Verdict.FAILED: "tab:red",
    Verdict.DONE: "tab:blue",
}


def _children(steps: list[StepSummary]) -> dict[int | None, list[StepSummary]]:
    known = {s.id for s in steps}
    children: dict[int | None, list[StepSummary]] = {}
    for s in steps:
        children.setdefault(s.parent if s.parent in known else None, []).append(s)
    return children


def _label(s: StepSummary) -> str:
    score = f" {s.metrics.metric} {s.metrics.mean:.4f}" if s.metrics else ""
    return f"{s.id} {s.template_id}{score} [{MARK.get(s.verdict, s.verdict.value)}]"


def text_tree(steps: list[StepSummary]) -> str:
    children = _children(steps)
    lines: list[str] = []

    def walk(node: StepSummary, prefix: str, last: bool, root: bool) -> None:
        lines.append(_label(node) if root else f"{prefix}{'└─ ' if last else '├─ '}{_label(node)}")
        below = children.get(node.id, [])
        inner = "" if root else prefix + ("   " if last else "│  ")
        for i, child in enumerate(below):
            walk(child, inner, i == len(below) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)


def tree_plot(steps: list[StepSummary], path: Path) -> Path | None:
    """Depth across, steps down; edges from each step to the step it built on."""
    if not steps:
        return None
    children = _children(steps)
    depth: dict[int, int] = {}
    order: list[StepSummary] = []

    def walk(node: StepSummary, d: int) -> None:
        depth[node.id] = d
        order.append(node)
        for child in children.get(node.id, []):
            walk(child, d + 1)

    for root in children.get(None, []):
        walk(root, 0)
    row = {s.id: i for i, s in enumerate(order)}
    fig = Figure(figsize=(9, 0.32 * len(order) + 1))
    ax = fig.subplots()
    for s in order:
        if s.parent in row:
            ax.plot([depth[s.parent], depth[s.id]], [row[s.parent], row[s.id]], color="lightgray", zorder=1)
        ax.scatter(depth[s.id], row[s.id], color=COLOR.get(s.verdict, "black"), zorder=2)
        ax.annotate(
            _label(s), (depth[s.id], row[s.id]), xytext=(6, -3), textcoords="offset points", fontsize=8
        )
    ax.invert_yaxis()
    ax.set_axis_off()
    ax.set_xlim(-0.5, max(depth.values()) + 6)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
