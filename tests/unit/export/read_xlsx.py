#!/usr/bin/env python3
"""Dumps an .xlsx workbook as JSON for export_test: per sheet its name, frozen cell, column
widths and every cell value with openpyxl's type (numbers stay numbers, text stays text).

usage: read_xlsx.py WORKBOOK.xlsx OUTPUT.json
"""
import json
import sys

import openpyxl
from openpyxl.utils import get_column_letter


def main():
    wb = openpyxl.load_workbook(sys.argv[1])
    sheets = []
    for ws in wb.worksheets:
        rows = []
        for row in ws.iter_rows(values_only=True):
            rows.append([v for v in row])
        widths = [ws.column_dimensions[get_column_letter(c)].width for c in range(1, ws.max_column + 1)]
        sheets.append({
            "name": ws.title,
            "freeze_panes": ws.freeze_panes,
            "autofilter": ws.auto_filter.ref,
            "widths": widths,
            "rows": rows,
        })
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump({"sheets": sheets}, f, allow_nan=False)


if __name__ == "__main__":
    main()
