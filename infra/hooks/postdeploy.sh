#!/bin/sh
# azd postdeploy hook: with registryEvents=eventGrid, provision once more after the first
# deploy so the Event Grid subscription can name the deployed function registry_event_grid.
set -eu
if [ "${REGISTRY_EVENTS:-eventGrid}" = "eventGrid" ] && [ "${APP_DEPLOYED:-false}" != "true" ]; then
  azd env set APP_DEPLOYED true
  azd provision --no-prompt
fi
