"""DataCompDR WebDataset shards -> the DR store (``convert``), with a full report.

See ``mobileclip_fastload.convert.api.convert`` for the options and
docs/FORMAT.md for the store it writes.
"""

from mobileclip_fastload.convert.api import REPORT_NAME, convert
from mobileclip_fastload.convert.report import ConvertReport, ShardReport
from mobileclip_fastload.ingest.skips import ALL_REASONS, SkipSample

__all__ = ["ALL_REASONS", "REPORT_NAME", "ConvertReport", "ShardReport", "SkipSample", "convert"]
