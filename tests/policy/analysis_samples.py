"""A valid policy whose environments have an analysis and a strategy (BASE edited)."""

from __future__ import annotations

from policy_samples import BASE, edit

QA_ANALYSIS = """\
          container: app
        analysis:
          interval: 30s
          duration: 5m
          failureLimit: 1
          onNoData: inconclusive
          retries: 3
          metrics:
            - name: error-rate
              prometheus:
                url: http://127.0.0.1:9090
                query: sum(rate(http_requests_total{pod=~"${canary}-.*",code=~"5.."}[1m]))
              threshold: {max: 0.05}
            - name: health
              http:
                url: http://${canary}.delivery:8080/healthz
                requests: 5
                headers: {Authorization: probe-token}
              threshold: {min: 0.95}
            - name: latency
              http: {url: "http://delivery.qa:8080/", value: latencyMs, attemptTimeoutSeconds: 2}
              threshold: {min: 0, max: 300}
            - name: acceptance
              job:
                image: myacr.azurecr.io/delivery-tests:1
                command: [pytest]
                args: [--version, "${version}"]
                backoffLimit: 1
                timeout: 30s
        strategy:
          canary:
            replicas: 10
            steps: [{weight: 10}, {pause: 30s}, {weight: 50}]
"""
RESOURCE_ID = ("/subscriptions/5d2c4b8e-9f3a-4e1b-8c7d-2a6f0e9b3c41/resourceGroups/rg/providers/"
               "microsoft.insights/components/delivery")
PROD_ANALYSIS = """\
          container: web
        analysis:
          measurements: 3
          metrics:
            - name: failures
              appInsights:
                resourceId: """ + RESOURCE_ID + """
                query: >-
                  requests | where timestamp > datetime(${windowStart})
                  | summarize failed = countif(success == false)
                column: failed
              threshold: {max: 5}
            - name: rps
              prometheus:
                url: https://contoso.prometheus.monitor.azure.com
                query: sum(rate(http_requests_total{service="${service}"}[1m]))
                azure: true
              threshold: {min: 1}
        strategy:
          blueGreen:
            previewService: delivery-preview
            activeService: delivery
            postPromotionAnalysis: true
            scaleDownDelay: 5m
"""

# BASE with a canary under a four-metric analysis in QA and blue-green in prod.
ANALYSIS = edit("          container: web\n", PROD_ANALYSIS,
                edit("          container: app\n", QA_ANALYSIS, BASE))
