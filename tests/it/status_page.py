#!/usr/bin/env python3
"""Drives the status page in headless Chromium (tests/it/status_page.rs).

    status_page.py URL INVENTORY SCREENSHOT

URL: the ops listener of a running ecs-dns serving the file INVENTORY (a
copy of the demo inventory plus a task whose service and tag are HTML).
Checks what a person would: the summary agrees with /records, the "Ask a
name" box explains a served, an unhealthy-only and a missing name, the
table filters, an edit of the inventory shows in "Recent changes" without
a reload, and the hostile strings show as text. Exits non-zero with the
first failed check; writes a screenshot to SCREENSHOT.
"""

import json
import re
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

DEADLINE = 30.0
PAYLOAD = "<img src=x onerror=alert(1)>"


def wait(what, check, deadline=DEADLINE):
    """Polls `check` until it returns a true value; fails after `deadline`."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < deadline:
        try:
            last = check()
            if last:
                print(f"  {what}: after {time.monotonic() - start:.2f}s")
                return last
        except Exception as error:  # the page may be mid-update
            last = error
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {deadline}s (last: {last!r})")


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def main():
    url, inventory, screenshot = sys.argv[1:4]
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(10)
    try:
        run(driver, url, inventory, screenshot)
    finally:
        driver.quit()


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def rows(driver, tbody_id):
    body = driver.find_element(By.ID, tbody_id)
    return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in body.find_elements(By.TAG_NAME, "tr")]


def ask(driver, name, rtype="A"):
    """Types `name` into the box and waits for the answer to it."""
    box = driver.find_element(By.ID, "lookup-input")
    box.clear()
    box.send_keys(name)
    Select(driver.find_element(By.ID, "lookup-type")).select_by_visible_text(rtype)
    driver.execute_script("document.getElementById('lookup-asked').textContent = ''")
    driver.find_element(By.CSS_SELECTOR, "#lookup-form button").click()
    wait(f"the answer for {name}", lambda: text(driver, "lookup-asked"))
    return text(driver, "lookup-rcode"), rows(driver, "lookup-records"), rows(driver, "lookup-tasks")


def run(driver, url, inventory, screenshot):
    print("summary against /records")
    driver.get(url + "/")
    wait("the summary", lambda: re.fullmatch(r"\d+", text(driver, "serial")))
    # A marker that a reload would lose.
    driver.execute_script("window.__not_reloaded = true")
    records = get_json(url + "/records?limit=10000")
    expect(text(driver, "zone") == records["zone"], f"zone {text(driver, 'zone')!r}")
    expect(int(text(driver, "serial")) == records["serial"], "serial")
    expect(int(text(driver, "tasks-total")) == records["tasks_total"], "tasks total")
    for verdict in ("served", "starting", "unhealthy"):
        want = sum(1 for t in records["tasks"] if t["verdict"] == verdict)
        row = driver.find_element(By.ID, f"verdict-{verdict}").text.split()
        expect(row == [verdict, str(want)], f"verdict {verdict}: {row} != {want}")
    expect(text(driver, "ready") == "ready", f"badge {text(driver, 'ready')!r}")
    clusters = [r[0] for r in rows(driver, "clusters")]
    expect(clusters == sorted(c["name"] for c in records["clusters"]), f"clusters {clusters}")

    print("ask a served name")
    rcode, answer, tasks = ask(driver, "web.prod.local")
    expect(rcode == "NOERROR", f"rcode {rcode!r}")
    expect(any(r[3] == "A" and r[4] == "10.0.1.10" for r in answer), f"answer {answer}")
    expect(len(tasks) == 2 and all(t[3] == "served" for t in tasks), f"tasks {tasks}")
    expect(text(driver, "lookup-matched") == "2", "two tasks behind web.prod.local")

    print("ask a name whose only task is unhealthy")
    rcode, answer, tasks = ask(driver, "4e5f60718293a4b5c6d7e8f90a1b2c3d.api.local")
    expect(rcode == "NXDOMAIN", f"rcode {rcode!r}")
    expect(not [r for r in answer if r[0] == "answer"], f"no answer records: {answer}")
    expect(len(tasks) == 1, f"tasks {tasks}")
    expect(tasks[0][3] == "unhealthy", f"verdict {tasks[0]}")
    expect("UNHEALTHY, and 1 other task of the service is served" in tasks[0][4],
           f"reason {tasks[0][4]!r}")
    expect(driver.save_screenshot(screenshot), f"cannot write the screenshot to {screenshot}")

    print("ask a name that does not exist")
    rcode, answer, tasks = ask(driver, "nothing-here.local")
    expect(rcode == "NXDOMAIN", f"rcode {rcode!r}")
    expect(tasks == [] and text(driver, "lookup-matched") == "0", f"tasks {tasks}")

    print("ask by address: the hostile task, as text")
    rcode, answer, tasks = ask(driver, "10.0.9.9")
    expect(len(tasks) == 1 and tasks[0][2] == PAYLOAD, f"tasks {tasks}")
    expect(rcode == "NOERROR", f"rcode {rcode!r}")
    expect([r[3:] for r in answer if r[0] == "answer"] == [["PTR", "ee00000000000000000000000000beef.img-src-x-onerror-alert-1.local."]],
           f"the hostile task's PTR: {answer}")

    print("ask by address: bridge tasks on one instance point at the host")
    rcode, answer, tasks = ask(driver, "10.0.1.10")
    expect(text(driver, "lookup-asked") == "10.1.0.10.in-addr.arpa. PTR", f"asked {text(driver, 'lookup-asked')!r}")
    expect([r[4] for r in answer if r[0] == "answer"] == ["i-0aaa000000000001.hosts.local."], f"answer {answer}")
    expect("EC2 instance i-0aaa000000000001" in text(driver, "lookup-why"), f"why {text(driver, 'lookup-why')!r}")
    expect(len(tasks) == 2, f"tasks {tasks}")

    print("ask by address outside the reverse zones")
    rcode, answer, tasks = ask(driver, "192.168.1.1")
    expect("no reverse zone holds 192.168.1.1" in text(driver, "lookup-why"), f"why {text(driver, 'lookup-why')!r}")

    print("filter the table")
    Select(driver.find_element(By.ID, "filter-verdict")).select_by_value("unhealthy")
    driver.find_element(By.CSS_SELECTOR, "#tasks-form button").click()
    wait("one unhealthy task", lambda: text(driver, "tasks-matched") == "1"
         and len(rows(driver, "tasks-body")) == 1)
    expect(rows(driver, "tasks-body")[0][0] == "4e5f60718293a4b5c6d7e8f90a1b2c3d", "the unhealthy one")
    Select(driver.find_element(By.ID, "filter-verdict")).select_by_value("")
    driver.find_element(By.ID, "filter-cluster").send_keys("staging")
    driver.find_element(By.CSS_SELECTOR, "#tasks-form button").click()
    staging = sum(1 for t in records["tasks"] if t["cluster"] == "staging")
    wait(f"{staging} staging tasks", lambda: text(driver, "tasks-matched") == str(staging)
         and all(r[1] == "staging" for r in rows(driver, "tasks-body")))
    driver.find_element(By.ID, "filter-cluster").clear()
    driver.find_element(By.CSS_SELECTOR, "#tasks-form button").click()
    wait("every task again", lambda: text(driver, "tasks-matched") == str(records["tasks_total"]))

    print("hostile strings render as text")
    table_text = driver.find_element(By.ID, "tasks-body").text
    expect(PAYLOAD in table_text, "the payload is shown as text in the table")
    expect("note=" + PAYLOAD in table_text, "the tag too")
    images = driver.execute_script("return document.getElementsByTagName('img').length")
    scripts = driver.execute_script("return document.getElementsByTagName('script').length")
    expect(images == 0, f"{images} img elements: markup was injected")
    expect(scripts == 1, f"{scripts} script elements: markup was injected")

    print("an edit of the inventory shows in Recent changes, without a reload")
    before = text(driver, "serial")
    with open(inventory, encoding="utf-8") as f:
        content = f.read()
    expect("10.1.1.10" in content, "the staging web task's address is in the inventory")
    with open(inventory, "w", encoding="utf-8") as f:
        f.write(content.replace("10.1.1.10", "10.1.1.99"))
    edited = time.monotonic()
    wait("the change in Recent changes",
         lambda: rows(driver, "changes-body")
         and "web.staging.local." in rows(driver, "changes-body")[0][6]
         and text(driver, "serial") != before)
    print(f"  edit to page: {time.monotonic() - edited:.2f}s")
    expect(driver.execute_script("return window.__not_reloaded === true"), "the page was reloaded")
    print("all checks passed")


if __name__ == "__main__":
    main()
