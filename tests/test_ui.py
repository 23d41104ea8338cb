"""The chat UI (GET /) in a real headless Chromium against the real API on 127.0.0.1: readiness, streamed answers,
dated sources, chat history, the API key and untrusted headlines rendered as text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from finassist.config import Settings
from finassist.inference.api import Services, create_app

from api_server import ApiServer
from conftest import article, ingest_rows
from newsgen import brookward_dividend, voltrix_guidance

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt install chromium)"),
]

API_KEY = "ui-test-key-0123456789"
ABOUT_ME = "Retired teacher, low risk, I hold Voltrix shares for dividends."
SCREENSHOT = Path("/tmp/finassist-ui.png")
XSS = "<img src=x onerror=alert(1)>"
# Short answers keep each question ~2 s on CPU (about 15 tokens/s), yet long enough to stream in several pieces.
MAX_TOKENS = 24

NEWS = [
    voltrix_guidance(201),
    brookward_dividend(202),
    # The feed escapes markup in headlines; cleaning unescapes it, so the stored headline holds a live-looking tag.
    article(
        203,
        headline="Skywell &lt;img src=x onerror=alert(1)&gt; Launches 12 Satellites",
        content="<p>Skywell Aerospace launched 12 broadband satellites from its Texas site.</p>",
        symbols=["SKYW"],
        created_at="2026-11-18T09:00:00Z",
        updated_at="2026-11-18T09:00:00Z",
    ),
]

# Records (state, answer length) of the last answer on every DOM change, to see it grow before `done`.
RECORD_ANSWER_GROWTH = """() => {
  window.__growth = [];
  new MutationObserver(() => {
    const all = document.querySelectorAll('[data-testid="message-assistant"]');
    const last = all[all.length - 1];
    if (!last) return;
    const text = last.querySelector('[data-testid="answer-text"]').textContent;
    window.__growth.push({state: last.dataset.state, length: text.length});
  }).observe(document.getElementById('thread'), {subtree: true, childList: true, characterData: true,
                                                  attributes: true});
}"""


# --- servers and browser --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ui_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("ui") / "home"
    settings = Settings(home=home, tracing=False)
    stats = ingest_rows(settings, NEWS, home.parent / "news.jsonl")
    assert stats.written == len(NEWS), stats
    return home


@pytest.fixture(scope="module")
def services(ui_home, llm) -> Services:
    services = Services(Settings(home=ui_home, tracing=False), llm=llm)
    services.load()
    assert services.chain is not None, services.error
    return services


@pytest.fixture(scope="module")
def open_server(ui_home, services):
    with ApiServer(create_app(Settings(home=ui_home, tracing=False), services=services)) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server(ui_home, services):
    settings = Settings(home=ui_home, tracing=False, api_key=API_KEY)
    with ApiServer(create_app(settings, services=services)) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
    )
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def problems() -> list[str]:
    """JavaScript errors and dialogs (an injected alert() would open one) seen by the page."""
    return []


@pytest.fixture
def page(browser: Browser, problems: list[str]):
    """A fresh browser profile (empty storage) per test; any JavaScript error or dialog fails it."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if is_script_error(msg) else None)
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page
    context.close()
    assert not problems, problems


def is_script_error(message) -> bool:
    # Chromium logs every non-2xx response ("Failed to load resource"); the tests cause some on purpose.
    return message.type == "error" and not message.text.startswith("Failed to load resource")


def ask_requests(page: Page) -> list[dict]:
    """Every /v1/ask request the page sends: its JSON body and its headers."""
    sent: list[dict] = []
    page.on(
        "request",
        lambda r: (
            sent.append({"body": json.loads(r.post_data or "{}"), "headers": r.headers})
            if r.url.endswith("/v1/ask")
            else None
        ),
    )
    return sent


def wait_ready(page: Page) -> None:
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(status).to_contain_text("SmolLM2-135M-Instruct")


def answer(page: Page, n: int):
    """The n-th assistant message (0-based), once it is finished."""
    message = page.get_by_test_id("message-assistant").nth(n)
    expect(message).to_have_attribute("data-state", "done", timeout=60_000)
    return message


# --- tests ------------------------------------------------------------------------------------------------------
def test_chat_streams_answers_with_dated_sources_and_sends_the_history(open_server, page: Page, tmp_path):
    sent = ask_requests(page)
    # The model is already loaded, so fake a loading server first: the page must show it, then poll until ready.
    page.route("**/readyz", lambda route: route.fulfill(status=503, json={"status": "loading", "error": None}))
    page.goto(f"{open_server.url}/?max_tokens={MAX_TOKENS}")
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-state", "loading")
    expect(status).to_contain_text("Loading")
    page.unroute("**/readyz")
    wait_ready(page)
    expect(page.get_by_test_id("api-key-section")).to_be_hidden()

    page.get_by_label("About me").fill(ABOUT_ME)
    page.reload()
    expect(page.get_by_label("About me")).to_have_value(ABOUT_ME)  # kept in localStorage
    wait_ready(page)

    page.evaluate(RECORD_ANSWER_GROWTH)
    first_question = "What did Voltrix say about its revenue guidance?"
    page.get_by_label("Your question").fill(first_question)
    page.get_by_label("Your question").press("Enter")
    first = answer(page, 0)

    growth = page.evaluate("window.__growth")
    streamed = sorted({g["length"] for g in growth if g["state"] == "streaming" and g["length"] > 0})
    assert len(streamed) >= 2, f"the answer did not grow token by token before `done`: {growth}"
    first_text = first.get_by_test_id("answer-text").text_content()
    assert first_text and first_text.strip()
    assert page.get_by_label("Your question").input_value() == ""

    voltrix = first.get_by_test_id("source").filter(has_text="Voltrix Raises Full-Year Revenue Guidance")
    expect(voltrix).to_have_count(1)
    link = voltrix.get_by_role("link", name="Voltrix Raises Full-Year Revenue Guidance To $18 Billion")
    expect(link).to_have_attribute("href", "https://news.example.com/201")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(voltrix.get_by_test_id("source-date")).to_have_text("2026-11-20")
    expect(voltrix.get_by_test_id("source-symbol")).to_have_text("VLTX")
    meta = first.get_by_test_id("answer-meta")
    expect(meta).to_contain_text("SmolLM2-135M-Instruct")
    expect(meta).to_contain_text("answer tokens")

    assert sent[0]["body"] == {
        "question": first_question,
        "about_me": ABOUT_ME,
        "history": [],
        "stream": True,
        "max_new_tokens": MAX_TOKENS,
    }

    follow_up = "And how did the market react?"
    page.get_by_label("Your question").fill(follow_up)
    page.get_by_test_id("send").click()
    second = answer(page, 1)
    expect(second.get_by_test_id("source").first).to_be_visible()
    assert sent[1]["body"]["question"] == follow_up
    assert sent[1]["body"]["history"] == [
        {"role": "user", "content": first_question},
        {"role": "assistant", "content": first_text},
    ]
    expect(page.get_by_test_id("message-user")).to_have_count(2)

    page.screenshot(path=str(tmp_path / "finassist-ui.png"))
    page.screenshot(path=str(SCREENSHOT))

    # Narrow screens: no sideways scrolling, the composer stays usable, settings fold behind a button.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_test_id("send")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.get_by_label("About me")).to_be_hidden()
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_label("About me")).to_be_visible()
    page.screenshot(path=str(tmp_path / "finassist-ui-narrow.png"))


def test_api_key_field_shows_when_required_and_a_wrong_key_gets_a_clear_error(keyed_server, page: Page):
    sent = ask_requests(page)
    page.goto(f"{keyed_server.url}/?max_tokens=8")
    wait_ready(page)
    key = page.get_by_label("API key")
    expect(page.get_by_test_id("api-key-section")).to_be_visible()
    expect(key).to_have_attribute("type", "password")

    key.fill("not-the-key")
    page.get_by_label("Your question").fill("Any news on Brookward Financial?")
    page.get_by_label("Your question").press("Enter")
    failed = page.get_by_test_id("message-assistant").first
    expect(failed).to_have_attribute("data-state", "error")
    expect(failed.get_by_test_id("error")).to_contain_text("API key missing or wrong")
    assert sent[0]["headers"]["authorization"] == "Bearer not-the-key"

    key.fill(API_KEY)
    failed.get_by_role("button", name="Try again").click()
    retried = answer(page, 0)  # the failed exchange is replaced by the retry
    expect(retried.get_by_test_id("source").first).to_be_visible()
    expect(page.get_by_test_id("error")).to_have_count(0)
    assert sent[1]["headers"]["authorization"] == f"Bearer {API_KEY}"
    # Not "remembered": the key lives in this tab's sessionStorage only.
    assert page.evaluate("sessionStorage.getItem('finassist.apiKey')") == API_KEY
    assert page.evaluate("localStorage.getItem('finassist.apiKey')") is None


def test_markup_in_a_headline_is_shown_as_text(
    open_server, page: Page, problems: list[str]
):
    page.goto(f"{open_server.url}/?max_tokens=4")
    wait_ready(page)
    page.get_by_text("Options").click()
    page.get_by_label("Only news about these tickers").fill("skyw")
    page.get_by_label("Your question").fill("What did Skywell launch?")
    page.get_by_label("Your question").press("Enter")
    done = answer(page, 0)

    headline = done.get_by_test_id("source-link")
    expect(headline).to_have_text(f"Skywell {XSS} Launches 12 Satellites")
    expect(page.locator("#transcript img")).to_have_count(0)
    expect(done.get_by_test_id("answer-meta")).to_contain_text("news about SKYW")
    assert problems == []  # alert(1) would have opened a dialog


def test_a_stopped_news_pipeline_shows_in_the_status(open_server, page: Page):
    degraded = {"status": "degraded", "error": "pipeline-file stopped: RuntimeError: boom"}
    page.route("**/readyz", lambda route: route.fulfill(status=503, json=degraded))
    page.goto(f"{open_server.url}/")
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-state", "failed")
    expect(status).to_contain_text("News feed stopped")
    expect(status).to_have_attribute("title", degraded["error"])
