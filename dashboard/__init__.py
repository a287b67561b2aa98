"""The Streamlit dashboard's helpers: artifact access (cached), tables, Plotly charts, texts.

Pages stay thin: they pick what to show and call these modules. Only `data_access` touches
the artifacts folder; `tables` and `charts` are pure functions of plain data.
"""
