// Search: the results under the search box for what is typed (nodes, op types, tensors), the
// matches marked in the graph, and going to a hit.
import { clear, h } from "../core/dom.js";
import { NO_HITS } from "../graph/model.js";

export function showSearch(editor, text) {
  const box = document.getElementById("search-results");
  clear(box);
  const res = editor.model ? editor.model.search(text) : NO_HITS;  // typed before the model has loaded
  editor.searchMatches = res.nodeIds;
  editor.applyMarks();
  if (!text.trim()) { box.hidden = true; return; }
  box.hidden = false;
  if (!res.hits.length) {
    box.append(h("div", { class: "muted", style: "padding:6px 10px", text: "nothing found" }));
    return;
  }
  for (const hit of res.hits) {
    box.append(
      h(
        "button",
        { type: "button", onclick: () => goToHit(editor, hit) },
        h("span", { class: "kind", text: hit.detail }),
        hit.label,
      ),
    );
  }
  if (res.total > res.hits.length)
    box.append(h("div", { class: "muted", style: "padding:4px 10px", text: `${res.total - res.hits.length} more` }));
}

export function goToHit(editor, hit) {
  document.getElementById("search-results").hidden = true;
  if (hit.kind === "node") editor.selectNode(hit.id, true);
  else editor.selectTensor(hit.id, true);
}

// The search box: results as the user types (after a short pause), Enter goes to the first, Escape clears.
export function bindSearch(editor) {
  const search = document.getElementById("search");
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => showSearch(editor, search.value), 120);
  });
  search.addEventListener("focus", () => { if (search.value) showSearch(editor, search.value); });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      const first = document.querySelector("#search-results button");
      if (first) first.click();
    }
    if (e.key === "Escape") { search.value = ""; showSearch(editor, ""); search.blur(); }
  });
}
