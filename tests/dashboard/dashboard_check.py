"""Drives the `cortex serve` dashboard in headless Chromium (Playwright, the machine's own
Chromium: no browser download) as a person would, and prints one JSON line of what it saw.

Usage: dashboard_check.py BASE_URL READ_KEY SCREENSHOT CHROMIUM

A refused key first (the page must say so), then the read key; waits for the first reading,
runs a verification with the button, waits for two latency points (the page polls every
second here, `?poll=1`), and saves a full-page screenshot. Any error the page logs (a script
error, a resource the CSP blocked, a failed load) is reported in `console_errors`; a step
that fails is reported in `failed`, with what was seen up to it (the screenshot shows where).
"""

import json
import sys

from playwright.sync_api import expect, sync_playwright

base, key, screenshot, chromium = sys.argv[1:5]
seen = {}
errors = []


def steps(page):
    page.goto(base + "/?poll=1")
    seen["board_hidden_before_key"] = page.is_hidden("#board")

    page.fill("#api-key", "cortex_not_a_key")
    page.click("#key-save")
    page.wait_for_selector("#message:not([hidden])")
    seen["refused_message"] = page.inner_text("#message")
    seen["form_back_after_refusal"] = page.is_visible("#api-key")
    # The refused key's 401 is logged by Chromium as a failed load: expected, not a page error.
    errors.clear()

    page.fill("#api-key", key)
    page.click("#key-save")
    # A locator wait, not wait_for_function: the page's CSP forbids the eval that one needs.
    expect(page.locator("#ledger-size")).not_to_have_text("–")
    seen["ledger_size"] = page.inner_text("#ledger-size")
    seen["last_hash"] = page.inner_text("#last-hash")
    seen["stored_key"] = page.evaluate("sessionStorage.getItem('cortex.dashboard.apiKey')")
    seen["message_hidden"] = page.is_hidden("#message")

    page.click("#verify-button")
    page.wait_for_selector("#verify-result.ok, #verify-result.bad")
    seen["verify_class"] = page.get_attribute("#verify-result", "class")
    seen["verify_text"] = page.inner_text("#verify-result")

    page.wait_for_selector("#latency-chart polyline.mean")
    seen["append_bars"] = page.locator("#appends-chart rect.bar").count()
    seen["projects"] = page.locator("#projects tr").all_inner_texts()
    seen["checkpoints"] = page.locator("#checkpoints tr").all_inner_texts()
    seen["verifications"] = page.locator("#verifications tr").all_inner_texts()
    seen["last_verify"] = page.inner_text("#last-verify")


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(15_000)
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        steps(page)
    except Exception as e:  # noqa: BLE001 - reported, with the page's errors, to the test
        seen["failed"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
    page.screenshot(path=screenshot, full_page=True)
    browser.close()

seen["console_errors"] = errors
print(json.dumps(seen))
