"""`monitor explain`: every input kind, the JSON contract, the readable form, and
entity F1 through the command on the project's blind labelled set."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from monitor.commands import check, explain

CORPUS = Path(__file__).parent / "data" / "corpus" / "blind.jsonl"
DATA = Path(__file__).parent / "data" / "articles"


def run_command(module: ModuleType, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="monitor")
    module.register(parser.add_subparsers())
    args = parser.parse_args([module.__name__.rsplit(".", 1)[-1], *argv])
    code: int = args.func(args)
    return code


def explain_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert run_command(explain, "--json", *argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


ARTICLES: list[dict[str, object]] = [
    {
        "id": "k1",
        "title": "딥시크 충격에 엔비디아 17% 폭락",
        "body": "엔비디아(NVDA) 주가가 16.97% 떨어졌다. SK하이닉스도 약세였다.",
        "expect": {"ignored": True},
    },
    {"id": "e1", "title": "Chevron trims capital budget", "summary": "Capex falls in 2025."},
    {"title": "Tax tips for your AGI", "body": "Adjusted gross income, or AGI, matters."},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    return path


def test_jsonl_gives_one_object_per_article_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = explain_json(capsys, str(write_jsonl(tmp_path / "a.jsonl", ARTICLES)))
    assert [o["id"] for o in out] == ["k1", "e1", "a-3"]
    first = out[0]
    assert set(first) == {"id", "title", "entities", "rules", "stance"}
    assert first["entities"] == ["deepseek", "nvidia", "sk_hynix"]
    assert "deepseek-shock" in first["rules"]  # type: ignore[operator]
    stance = first["stance"]
    assert isinstance(stance, dict) and set(stance) == {"nvidia", "sk_hynix"}
    assert stance["nvidia"]["label"] in {"bullish", "bearish", "mixed", "neutral"}
    assert {"label", "score", "evidence"} <= set(stance["nvidia"])
    assert out[1]["entities"] == ["capex"] and out[1]["stance"] == {}
    assert out[2]["entities"] == []


def test_stdin_dash_is_sniffed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in ARTICLES[:1]).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    out = explain_json(capsys, "-")
    assert out[0]["id"] == "k1"


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>테스트 경제</title><link>https://example.com/</link>
<item><title>SK하이닉스, HBM4 양산 돌입</title><link>https://example.com/1</link>
<guid>n-1</guid>
<description>&lt;p&gt;SK하이닉스가 엔비디아에 HBM4를 공급한다.&lt;/p&gt;</description>
<pubDate>Tue, 28 Jan 2025 07:20:00 +0900</pubDate></item>
<item><title>삼성바이오로직스 수주</title><link>https://example.com/2</link><guid>n-2</guid>
<description>의약품 위탁생산 계약</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Newsroom</title><id>urn:x</id>
<updated>2025-01-27T10:00:00Z</updated>
<entry><title>Nvidia unveils Blackwell Ultra</title><id>urn:1</id>
<link href="https://example.com/a"/><updated>2025-01-27T10:00:00Z</updated>
<summary>The GB300 ships later this year.</summary></entry></feed>"""


def test_rss_and_atom_feed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ko.xml").write_text(RSS, encoding="utf-8")
    (tmp_path / "en.atom").write_text(ATOM, encoding="utf-8")
    out = explain_json(capsys, str(tmp_path / "ko.xml"), str(tmp_path / "en.atom"))
    assert [o["title"] for o in out] == [
        "SK하이닉스, HBM4 양산 돌입",
        "삼성바이오로직스 수주",
        "Nvidia unveils Blackwell Ultra",
    ]
    assert [o["entities"] for o in out] == [
        ["hbm", "nvidia", "sk_hynix"],
        [],
        ["blackwell", "nvidia"],
    ]


PAGE = """<!doctype html><html lang="ko"><head><title>사이트 제목</title>
<meta property="og:title" content="엔비디아, H20 대중 수출 재개"><script>var x = "딥시크";</script>
</head><body><nav><p>메뉴 삼성전자</p></nav>
<article><p>엔비디아가 미국 정부의 수출 허가를 받았다.</p>
<p>H20 판매가 <b>다시</b> 시작된다.</p></article></body></html>"""


def test_html_article_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    (out,) = explain_json(capsys, str(tmp_path / "page.html"))
    assert out["title"] == "엔비디아, H20 대중 수출 재개"
    # script and navigation text are not part of the article
    assert out["entities"] == ["export_controls", "h20", "nvidia"]


def test_human_form_highlights_hits_and_gives_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ARTICLES[:1])
    assert run_command(explain, str(path)) == 0
    text = capsys.readouterr().out
    assert "title: [[딥시크]]{deepseek} 충격에 [[엔비디아]]{nvidia} 17% 폭락" in text
    assert "[[NVDA]]{nvidia}" in text
    assert "FIRED deepseek-shock" in text
    assert "all: export_controls not found" in text
    assert "nvidia: " in text and "stance:" in text


def test_rules_dir_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "e.toml").write_text(
        '[[entity]]\nid = "acme"\naliases.en = ["Acme"]\n\n[[rule]]\nid = "acme-news"\n'
        'title = "Acme"\ndescription = "Any Acme story."\n[rule.when]\nall = ["acme"]\n',
        encoding="utf-8",
    )
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "title": "Acme and Nvidia"}])
    (out,) = explain_json(capsys, "--rules", str(rules), str(path))
    assert (out["entities"], out["rules"], out["stance"]) == (["acme"], ["acme-news"], {})


def test_bad_lines_are_reported_and_the_rest_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "ok", "title": "Nvidia"}\nnot json\n{"id": "no-title"}\n', "utf-8")
    assert run_command(explain, "--json", str(path)) == 1
    captured = capsys.readouterr()
    assert [json.loads(x)["id"] for x in captured.out.splitlines()] == ["ok"]
    assert f"{path}:2: not JSON" in captured.err
    assert f"{path}:3: needs an object with a title" in captured.err


def test_language_is_guessed_when_missing() -> None:
    assert explain.guess_lang("엔비디아 주가가 급락했다 NVDA") == "ko"
    assert explain.guess_lang("Nvidia shares fell sharply on Monday (엔비디아)") == "en"
    assert explain.article_from_dict({"title": "삼성전자 실적"}, "x").lang == "ko"


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("hard_cases*.jsonl")))
def test_hard_cases_through_the_command(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [json.loads(x) for x in (DATA / name).read_text("utf-8").splitlines()]
    out = explain_json(capsys, str(DATA / name))
    assert [o["entities"] for o in out] == [r["expect"]["entities"] for r in rows]


def test_entity_f1_on_the_blind_set_through_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    want = [
        set(json.loads(x)["expect"]["entities"]) for x in CORPUS.read_text("utf-8").splitlines()
    ]
    got = [set(o["entities"]) for o in explain_json(capsys, str(CORPUS))]  # type: ignore[call-overload]
    tp = sum(len(w & g) for w, g in zip(want, got, strict=True))
    fp = sum(len(g - w) for w, g in zip(want, got, strict=True))
    fn = sum(len(w - g) for w, g in zip(want, got, strict=True))
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.97


# ----------------------------------------------------------------------- monitor check


def test_check_ok_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(check) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and "entities" in out and "aliases" in out and "rules" in out


def test_check_reports_each_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.toml").write_text(
        '[[entity]]\nid = "x"\naliases.en = ["X"]\n\n[[rule]]\nid = "r"\ntitle = "t"\n'
        'description = "d"\ndestinations = ["nowhere"]\n[rule.when]\nall = ["y"]\n',
        encoding="utf-8",
    )
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[[notifiers]]\nname = "desk"\nkind = "slack"\n'
        'url = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN"\n',
        encoding="utf-8",
    )
    assert run_command(check, "--config", str(cfg), "--rules", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'r.toml'}:11: rule 'r': field 'when.all.0': unknown entity 'y'" in err
    assert f"{tmp_path / 'r.toml'}:9: rule 'r': field 'destinations': unknown destination" in err
    assert "SECRETTOKEN" not in err


def test_check_invalid_config_exits_1_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[[notifiers]]\nname = "desk"\nkind = "carrier-pigeon"\n'
        'url = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN"\n',
        encoding="utf-8",
    )
    assert run_command(check, "--config", str(cfg)) == 1
    err = capsys.readouterr().err
    assert "config.toml:3" in err and "kind" in err
    assert "SECRETTOKEN" not in err
