"""SAML scenario-correlation dashboard: `streamlit run app.py`.

The entry script: page config, the navigation (st.navigation; the pages are the files of app_pages/,
the Overview first) and the sidebar's experiment picker, then the chosen page. Shared pieces live
in dashboard/ (docs/DASHBOARD.md).
"""
from dashboard import warmup

warmup.start()  # first: the browser loads the chart library while the imports below run

from dashboard import ui  # noqa: E402

ui.navigation().run()
