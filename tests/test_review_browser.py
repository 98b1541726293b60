"""The reviewer's day, through the real Phoenix UI in headless Chromium.

Phoenix runs with authentication on. A batch of traced, gated runs (one
``setup_tracing`` call, no per-gate wiring) is sampled for review. Two reviewers are
made Phoenix users with ``hitl review users add``; each logs in, opens the filtered
review list (the URL ``hitl review pending`` prints), opens a gated span, picks a
verdict and writes guidance in Phoenix's annotation panel. ``collect`` then attributes
both verdicts to the two users, the guidance activates (two distinct reviewers), and
the next run's prompt carries it.

Debian's ``/usr/bin/chromium`` driven through Playwright (``executable_path``, no
browser download). Screenshots go to ``tests/artifacts/`` (git-ignored);
``HITL_README_SCREENSHOT=1`` also refreshes ``docs/phoenix-review.png``.

The reviewers' first-login password change is done over HTTP (``/auth/login`` +
``patchViewer``), which is what Phoenix's reset form does.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_graph import Ledger, scripted_turns, thread
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from test_review_auth import BASE, RULE, cli, login, traced_runs

from hitl_langgraph import GatedToolNode
from hitl_langgraph.feedback import (
    FeedbackLoop,
    PhoenixContextResolver,
    PhoenixGuidance,
    PromptRegistry,
    ReviewerFeedback,
)
from hitl_langgraph.feedback.guidance import GuidanceSet
from hitl_langgraph.review import VERDICT_NAME, PhoenixClient, ReviewQueue
from hitl_langgraph.store import ApprovalStore, open_store
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
README_PNG = Path(__file__).parent.parent / "docs" / "phoenix-review.png"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    st = open_store(f"sqlite:///{tmp_path / 'hitl.db'}")
    yield st
    st.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def review_in_ui(
    browser: Any, url: str, list_url: str, email: str, password: str, row: int, who: str
) -> tuple[int, Path]:
    """Log in, open the filtered list, open row ``row``'s span, annotate it."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    try:
        page.goto(url + "/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button:has-text('Log In')")
        page.wait_for_url("**/projects**")
        page.goto(list_url)  # the filter is in the URL: Phoenix's own filter box shows it
        page.wait_for_selector("tbody tr")
        assert "annotations['review_request'].label == 'pending'" in page.inner_text("body")
        rows = page.locator("tbody tr").count()
        shot(page, f"{who}-1-review-list")
        page.locator("tbody tr").nth(row).locator("text=tools").click()
        drawer = page.get_by_test_id("application-drawer-plane")
        drawer.get_by_role("button", name="Annotate this span").click()
        drawer.get_by_role("button", name="Select an item").click()
        page.get_by_role("option", name="incorrect").click()
        guidance = drawer.locator("textarea[name=hitl_guidance]")
        guidance.fill(RULE)
        guidance.press("Tab")  # the panel saves on change and blur
        page.wait_for_timeout(1500)
        return rows, shot(page, f"{who}-2-annotated")
    finally:
        context.close()


def wait_for(fn: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def bank_agent(store: ApprovalStore, feedback: ReviewerFeedback, seen: list[str]) -> Any:
    """The bank agent again; its system prompt goes through the reviewer feedback."""
    call = {"name": "transfer_funds", "args": {"amount": 6000, "to": "bob"}, "id": "c1"}
    model = scripted_turns(AIMessage("", tool_calls=[call]))

    def agent(state: MessagesState) -> dict[str, Any]:
        ask = str(state["messages"][0].content)
        system = feedback.apply("You are the bank agent.", node="agent", input=ask,
                                tools=["transfer_funds"])  # fmt: skip
        seen.append(system)
        return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}

    from fixtures_graph import bank_policy, bank_tools

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", GatedToolNode(bank_tools(Ledger()), policy=bank_policy(), store=store))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver())


def test_two_reviewers_review_in_the_phoenix_ui_and_the_next_prompt_changes(
    phoenix_auth_server: PhoenixServer,
    store: ApprovalStore,
    phoenix_project: str,
    browser: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fixtures_phoenix import PHOENIX_ADMIN_SECRET

    monkeypatch.setenv("PHOENIX_API_KEY", PHOENIX_ADMIN_SECRET)
    url = phoenix_auth_server.url
    spans = traced_runs(store, url, phoenix_project, 3)
    base = ("--store", store.url, "--phoenix", url, "--project", phoenix_project)
    assert cli(*base, "review", "setup")[0] == 0  # the verdict and guidance configs
    tag = phoenix_project[-8:]  # the auth server is shared by the session: own user names
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    passwords = {}
    for name in (alice, bob):
        code, _, err = cli(*base, "review", "users", "add", name, "--role", "finance",
                           "--password", f"{name}-initial-Pass-1")  # fmt: skip
        assert code == 0, err
        passwords[name] = f"{name}-Changed-Pass-2"
        login(url, f"{name}@reviewers.invalid", f"{name}-initial-Pass-1", passwords[name]).close()

    client = PhoenixClient(url)
    queue = ReviewQueue(client, project=phoenix_project, store=store, required_roles={"finance"})
    items = queue.pending()
    assert len(items) == 3 and items.url is not None
    code, out, _ = cli(*base, "review", "pending")
    assert code == 0 and items.url in out

    seen_rows = []
    for row, name in enumerate((alice, bob)):
        rows, last = review_in_ui(
            browser, url, items.url, f"{name}@reviewers.invalid", passwords[name], row,
            name.split("-")[0],
        )  # fmt: skip
        seen_rows.append(rows)
    assert seen_rows == [3, 3]  # the filtered list holds exactly the spans awaiting review
    if os.environ.get("HITL_README_SCREENSHOT"):
        README_PNG.parent.mkdir(exist_ok=True)
        shutil.copyfile(last, README_PNG)

    def ui_verdicts() -> list[dict[str, Any]]:
        rows = client.span_annotations(phoenix_project, spans, names=[VERDICT_NAME])
        return rows if len(rows) == 2 else []

    made = wait_for(ui_verdicts)
    assert len(made) == 2 and all(a["source"] == "APP" for a in made)

    rep = queue.collect()
    assert rep.closed == 2 and rep.unauthorized == 0
    by_reviewer = {v.reviewer: v for v in store.list_reviews(phoenix_project, name=VERDICT_NAME)}
    assert set(by_reviewer) == {alice, bob}
    assert {v.label for v in by_reviewer.values()} == {"incorrect"}
    assert queue.sla().pending == 1 and len(queue.pending()) == 1  # the third run waits

    # the guidance activates (two distinct reviewers) and the next run's prompt has it
    prompt = f"bank-{phoenix_project[-8:]}"
    registry = PromptRegistry(prompt, phoenix=client, base=BASE, node="agent", store=store,
                              tools=["transfer_funds"], ttl=0)  # fmt: skip
    registry.promote(registry.push_candidate(GuidanceSet()).version.id)
    loop = FeedbackLoop(
        store, project=phoenix_project, collect=queue.collect,
        resolver=PhoenixContextResolver(store, client, phoenix_project),
        prompts=[registry], auto_promote=True, mirror=queue.sync,
    )  # fmt: skip
    report = loop.run_once()
    assert report.ok, report
    (item,) = report.guidance.active
    assert item.reviewers == (alice, bob)
    seen: list[str] = []
    app = bank_agent(store, ReviewerFeedback(PhoenixGuidance(registry)), seen)
    app.invoke({"messages": [HumanMessage("send bob 6000")]}, thread())
    assert item.instruction in seen[0]
