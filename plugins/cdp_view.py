"""The "B2B CDP" view in the Airflow UI: a FastAPI app under /cdp and its navigation entry.

The page itself is built by b2b_cdp.ui; this file only registers it with Airflow.
"""

from airflow.plugins_manager import AirflowPlugin

from b2b_cdp.ui import URL_PREFIX, create_app


class CdpViewPlugin(AirflowPlugin):
    name = "b2b_cdp"
    fastapi_apps = [{"name": "b2b_cdp_view", "app": create_app(), "url_prefix": URL_PREFIX}]
    # Relative hrefs: the Airflow UI resolves them against its base URL, so the view also works
    # when Airflow is served under a path prefix.
    external_views = [{
        "name": "B2B CDP",
        "href": URL_PREFIX.lstrip("/") + "/",
        "icon": URL_PREFIX.lstrip("/") + "/icon.svg",
        "url_route": "b2b-cdp",
        "destination": "nav",
        "nav_top_level": True,
    }]
