// Catalog: search as you type and filter by owner, group and type; keyboard: "/" focuses the
// search, arrow keys move between the visible metrics, Enter opens one.
(function () {
  "use strict";
  const search = document.getElementById("search");
  const owner = document.getElementById("filter-owner");
  const group = document.getElementById("filter-group");
  const type = document.getElementById("filter-type");
  const cards = Array.from(document.querySelectorAll("#metric-cards .card"));
  const count = document.getElementById("result-count");
  const none = document.getElementById("no-results");
  const params = new URLSearchParams(location.search);
  if (params.get("q")) search.value = params.get("q");

  function apply() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards) {
      const visible = words.every((w) => card.dataset.search.includes(w))
        && (!owner.value || card.dataset.owner === owner.value)
        && (!group || !group.value || card.dataset.groups.split("|").includes(group.value))
        && (!type.value || card.dataset.type === type.value);
      card.hidden = !visible;
      if (visible) shown += 1;
    }
    count.textContent = shown === cards.length ? `${cards.length} metrics` : `${shown} of ${cards.length} metrics`;
    none.hidden = shown !== 0;
    const url = new URL(location.href);
    if (search.value) url.searchParams.set("q", search.value); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  }

  function visibleLinks() {
    return cards.filter((c) => !c.hidden).map((c) => c.querySelector(".card-link"));
  }

  for (const el of [search, owner, group, type]) if (el) el.addEventListener("input", apply);
  document.getElementById("catalog-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const first = visibleLinks()[0];
    if (first) first.focus();
  });
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (e.key === "/" && !typing) { e.preventDefault(); search.focus(); search.select(); return; }
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const links = visibleLinks();
    const at = links.indexOf(document.activeElement);
    if (document.activeElement === search && e.key === "ArrowDown" && links.length) {
      e.preventDefault(); links[0].focus(); return;
    }
    if (at < 0) return;
    e.preventDefault();
    if (e.key === "ArrowDown" && at < links.length - 1) links[at + 1].focus();
    if (e.key === "ArrowUp") (at === 0 ? search : links[at - 1]).focus();
  });
  apply();
})();
