// The page's router: #/runs?..., #/run/<id>, #/compare?ids=a,b. Each view returns a function
// that stops its refresh timers when the user leaves it.
import { fill, errorBox } from "./dom.js";
import { runsView } from "./runs.js";
import { runView } from "./run.js";
import { compareView } from "./compare.js";

const root = document.getElementById("view");
let leave = () => {};
let generation = 0;

async function route() {
  leave();
  leave = () => {};
  const mine = ++generation;
  const [path, search] = (window.location.hash.slice(1) || "/runs").split("?");
  const query = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === (parts[0] || "runs"));
  }
  root.setAttribute("aria-busy", "true");
  try {
    let stop;
    if (parts[0] === "run" && parts[1]) stop = await runView(root, decodeURIComponent(parts[1]));
    else if (parts[0] === "compare") stop = await compareView(root, query);
    else stop = await runsView(root, query);
    if (mine === generation) leave = stop; else stop();
  } catch (err) {
    if (mine === generation) fill(root, errorBox(err.message));
  } finally {
    if (mine === generation) {
      root.setAttribute("aria-busy", "false");
      document.body.dataset.ready = parts[0] || "runs";
    }
  }
}

window.addEventListener("hashchange", route);
route();
