"""The API's routes, one Powertools router per resource; ``api.app`` includes them under
:data:`BASE`."""

from oms_webhooks.names import API_BASE_PATH

#: The whisperer API's path prefix (DESIGN §3): every route, the docs and openapi.json.
BASE = API_BASE_PATH
