"""Self-contained HTML reports (figures embedded as base64 PNG).

``riskfm.evaluate.evaluate`` builds the evaluation report with ``write_html_report``.
"""

from riskfm.report.html import Section, image_data_uri, table_html, write_html_report

__all__ = ["Section", "image_data_uri", "table_html", "write_html_report"]
