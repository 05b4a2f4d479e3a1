"""End-to-end: a short pilot, then playbooks/post_deploy.yml writes the three reports from its journal and
Prometheus; the HTML, opened in headless Chromium, shows its charts drawn."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from integration_support import ROOT
from rollout_world import WITHOUT_BACKUP, Playbook

pytest_plugins = ["e2e_fixtures"]

# The page's fixed layout (report/html.py): body padding 16 px, the verdict and facts above a 2 x 2 grid of
# 600 x 260 px charts, 16 px apart across, 12 px down. The plot areas are filled with PLOT_BACKGROUND.
PLOT_BACKGROUND = (0xEE, 0xF3, 0xFB)
SERIES = {(0x1F, 0x5F, 0xBF), (0xE8, 0x73, 0x0C)}  # v2.9, v3.0.0 (svg.SERIES_COLOURS)
EDGE = 6  # pixels around a plot area where its lines may be drawn
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"


def near_series(pixel) -> bool:
    return any(sum(abs(channel - wanted) for channel, wanted in zip(pixel, colour)) <= 60 for colour in SERIES)


def decode_png(data: bytes) -> tuple[int, int, list[bytearray], int]:
    """Width, height, rows and bytes per pixel of an 8-bit RGB(A) PNG (no interlace), with the stdlib."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour_type, unused_compression, unused_filter, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows, previous, offset = [], bytearray(stride), 0
    for unused_row in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for index in range(stride):
            left = line[index - channels] if index >= channels else 0
            up = previous[index]
            corner = previous[index - channels] if index >= channels else 0
            if kind == 1:
                line[index] = (line[index] + left) & 0xFF
            elif kind == 2:
                line[index] = (line[index] + up) & 0xFF
            elif kind == 3:
                line[index] = (line[index] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                best = min(
                    (abs(estimate - left), 0, left), (abs(estimate - up), 1, up), (abs(estimate - corner), 2, corner)
                )
                line[index] = (line[index] + best[2]) & 0xFF
        rows.append(line)
        previous = line
    return width, height, rows, channels


def plot_regions(width, height, rows, channels):
    """Bounding boxes of the plot areas: runs of PLOT_BACKGROUND rows, split into the left and right column."""
    boxes = []
    for column in (range(0, width // 2), range(width // 2, width)):
        hits = [
            (x, y)
            for y in range(0, height, 2)
            for x in column[::4]
            if tuple(rows[y][x * channels : x * channels + 3]) == PLOT_BACKGROUND
        ]
        ys = sorted({y for unused_x, y in hits})
        groups, start = [], None
        for index, y in enumerate(ys):
            if start is None:
                start = y
            if index + 1 == len(ys) or ys[index + 1] - y > 8:
                groups.append((start, y))
                start = None
        for top, bottom in groups:
            xs = [x for x, y in hits if top <= y <= bottom]
            boxes.append((min(xs), top, max(xs), bottom))
    return boxes


def test_post_deploy_writes_the_three_reports_of_a_pilot_and_the_page_draws_its_charts(rollout_world):
    world = rollout_world
    namespace = world.namespace("pilot", ["checkout"])
    pilot_vars = world.pilot_vars(namespace, **WITHOUT_BACKUP)
    pilot_vars["ceres_pilot"]["canary_steps"] = [10, 25]
    pilot = Playbook("pilot", pilot_vars)
    assert pilot.wait() == 0, pilot.output
    records = world.journal()
    run_id = records[-1]["run_id"]

    with tempfile.TemporaryDirectory(prefix="ceres-report-") as directory:
        report_vars = {"ceres_rollout_journal": pilot_vars["ceres_rollout_journal"], "ceres_report_dir": directory}
        # a pilot is not a finished rollout: the services criterion fails, so by default the play fails, after writing
        first = Playbook("post_deploy", report_vars)
        assert first.wait() != 0, first.output
        assert "the rollout's verdict is FAIL" in first.said, first.output
        files = {name: Path(directory) / name for name in ("report.md", "report.json", "report.html")}
        assert all(path.exists() for path in files.values()), list(Path(directory).iterdir())
        written = {name: path.read_bytes() for name, path in files.items()}

        # the evidence bundle against the journal
        model = json.loads(written["report.json"])
        assert [run["run_id"] for run in model["runs"]] == [run_id]
        assert [change["weight"] for change in model["weights"]] == [10, 25]
        assert [change["at"] for change in model["weights"]] == [
            record["recorded_at"] for record in records if record["step_id"] in ("pilot/weight-10", "pilot/weight-25")
        ]
        gated = [record for record in records if record.get("gate")]
        assert [gate["checks"] for gate in model["gates"]] == [
            {name: {**check, "query": None} for name, check in record["gate"]["checks"].items()} for record in gated
        ]
        assert model["runs"][0]["by"] == records[-1]["data"]["by"]
        criteria = {item["id"]: item for item in model["criteria"]}
        assert criteria["services_running"]["verdict"] == "FAIL"
        for name in ("error_rate", "latency_p95", "latency_p99", "sla"):
            assert criteria[name]["verdict"] == "PASS", criteria[name]
        assert criteria["zero_data_loss"]["verdict"] == "NOT MEASURED"  # no backup in this pilot
        assert criteria["cost_reduction"]["verdict"] == "NOT MEASURED"
        assert criteria["user_satisfaction"]["verdict"] == "NOT MEASURED"
        assert model["verdict"]["verdict"] == "FAIL"
        for chart in model["metrics"]["charts"].values():
            assert set(chart["series"]) == {"v2.9", "v3.0.0"}, chart
        markdown = written["report.md"].decode()
        assert "**Verdict: FAIL**" in markdown and run_id in markdown
        page = written["report.html"].decode()
        assert "<script" not in page and "http://" not in page.split("<h2>Queries</h2>")[0].replace(
            'xmlns="http://www.w3.org/2000/svg"', ""
        ).replace(model["metrics"]["source"], "")
        assert page.count("<svg") == 4 and page.count('class="series"') >= 8

        # the same rollout again, without failing on the verdict: the same bytes, nothing changed
        again = Playbook("post_deploy", {**report_vars, "post_deploy_fail_on_verdict": False})
        assert again.wait() == 0, again.output
        assert "changed=0" in again.recap and "failed=0" in again.recap, again.recap
        assert {name: path.read_bytes() for name, path in files.items()} == written

        # the page in headless Chromium: four plot areas, each with a drawn series in it
        chromium = shutil.which("chromium")
        assert chromium, "Debian's chromium is needed (sandbox/apt-deps.sh)"
        screenshot = Path(directory) / "report.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--screenshot=%s" % screenshot,
                "--window-size=1280,2000",
                files["report.html"].as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        width, height, rows, channels = decode_png(screenshot.read_bytes())
        boxes = plot_regions(width, height, rows, channels)
        assert len(boxes) == 4, boxes
        for left, top, right, bottom in boxes:
            assert right - left > 400 and bottom - top > 150, boxes
            # a line at 0 lies on the plot area's lower edge: look a few pixels around it; anti-aliasing: near colours
            drawn = sum(
                1
                for y in range(max(0, top - EDGE), min(height, bottom + EDGE + 1))
                for x in range(max(0, left - EDGE), min(width, right + EDGE + 1))
                if near_series(rows[y][x * channels : x * channels + 3])
            )
            assert drawn > 200, (left, top, right, bottom, drawn)
        if os.environ.get("CERES_UPDATE_SCREENSHOT"):  # the README's picture, refreshed on request only
            SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(screenshot, SCREENSHOT)
