"""What readers do on the site, done in a real browser (issue 12): pick a framework once
and keep it across the book, open and close a solution, search for a term."""

from __future__ import annotations

# Pages with framework tabs (synced group "framework") and exercise solutions.
TABBED, OTHER_TABBED = "chapters/lr_sweep.html", "chapters/momentum.html"


def tab_choices(page) -> dict[str, int]:
    """How many tab sets show each framework."""
    return page.evaluate(
        """() => {
          const shown = {};
          document.querySelectorAll('label.sd-tab-label[data-sync-group="framework"]')
            .forEach((label) => {
              if (document.getElementById(label.htmlFor).checked) {
                const id = label.dataset.syncId;
                shown[id] = (shown[id] ?? 0) + 1;
              }
            });
          return shown;
        }"""
    )


def test_framework_tabs_stay_in_sync_across_a_page_and_across_pages(context, origin):
    page = context.new_page()
    page.goto(f"{origin}/{TABBED}", wait_until="networkidle")
    before = tab_choices(page)
    assert set(before) == {"keras"} and before["keras"] >= 2  # Keras first, everywhere
    # the first tab set a reader sees (some sit in folded cells)
    page.locator('label.sd-tab-label[data-sync-id="pytorch"]:visible').first.click()
    assert tab_choices(page) == {"pytorch": before["keras"]}  # every set switched
    page.goto(f"{origin}/{OTHER_TABBED}", wait_until="networkidle")
    assert set(tab_choices(page)) == {"pytorch"}  # and the next page remembers


def test_a_solution_opens_and_closes(context, origin):
    page = context.new_page()
    page.goto(f"{origin}/{TABBED}", wait_until="networkidle")
    solution = page.locator(".solution.dropdown").first
    body = solution.locator(":scope > :not(.admonition-title)").first
    assert body.is_hidden()  # folded away under its exercise
    solution.locator(".toggle-button").click()
    body.wait_for(state="visible")
    solution.locator(".toggle-button").click()
    body.wait_for(state="hidden")


def test_search_finds_a_chapter(context, origin):
    page = context.new_page()
    page.goto(f"{origin}/search.html?q=Nesterov", wait_until="networkidle")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=15_000)
    assert "chapters/momentum.html" in [
        results.nth(i).get_attribute("href") for i in range(results.count())
    ]
