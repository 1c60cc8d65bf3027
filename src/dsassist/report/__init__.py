"""What a run leaves behind for people: the Markdown report, the notebook, the plots."""

from dsassist.report.markdown import answer_for, write_report
from dsassist.report.notebook import write_notebook

__all__ = ["answer_for", "write_notebook", "write_report"]
