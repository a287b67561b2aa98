"""What the browser can start on before the first chart arrives: Streamlit loads its Plotly
component (a 4.7 MB script, the largest part of its frontend) only when the first chart reaches
the page, and on a 2-core machine fetching, compiling and starting it took longer than the
server's whole first run. The entry script sends this first, so the browser loads that script
while the server is still importing and computing. Imports nothing but Streamlit."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import streamlit as st

from dashboard.settings import parse_flag

KEY = "browser-warmup"  # the container holding the script; hidden by the page CSS (dashboard/ui.py)
ENV_VAR = "SAML_BROWSER_WARMUP"  # "0" (or another "no") turns it off, e.g. to measure what it gains


@lru_cache(maxsize=1)
def _plotly_chunk() -> str | None:
    """File name of Streamlit's Plotly component script in this Streamlit version, if there is one."""
    found = sorted(p.name for p in (Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js"))
    return found[0] if len(found) == 1 else None


def script(chunk: str) -> str:
    # Resolved next to Streamlit's own main script (whatever the server's base URL path), so the
    # browser's module map holds exactly the module the component imports later; importing it
    # twice is a cache hit. A failure changes nothing: the chart then loads it as before.
    return f"""<script>
(() => {{
  if (window.__samlWarmup) return;
  window.__samlWarmup = true;
  const main = [...document.querySelectorAll('script[src]')].find(s => /\\/static\\/js\\/index\\.[^/]*\\.js/.test(s.src));
  if (!main) return;
  import(new URL('{chunk}', main.src).href).catch(() => {{}});
}})();
</script>"""


def start() -> None:
    """Send the warm-up script (once per page load; nothing when this Streamlit has no such file)."""
    if parse_flag(os.environ.get(ENV_VAR, "1")) is False:
        return
    chunk = _plotly_chunk()
    if chunk:
        st.container(key=KEY).html(script(chunk), unsafe_allow_javascript=True)
