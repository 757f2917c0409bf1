"""The operator's dashboard (Streamlit): talks only to the control API."""
