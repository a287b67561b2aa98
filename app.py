"""SAML scenario-correlation dashboard: `streamlit run app.py`.

The entry script: page config, the navigation (st.navigation; the pages are the files of app_pages/,
the Overview first) and the sidebar's experiment picker, then the chosen page. Shared pieces live
in dashboard/ (docs/DASHBOARD.md).
"""
from dashboard import ui

ui.navigation().run()
