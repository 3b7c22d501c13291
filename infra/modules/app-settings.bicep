// Every app setting the Function App gets, in one list. The drift test
// (tests/infra/test_drift.py) reads the keys of `appSettings` below and fails when the code
// reads a setting that is not here: a new setting is one line in this object.

@description('Client ID of the app\'s user-assigned identity.')
param identityClientId string

@description('Storage account of the task hub and the ledger.')
param storageAccountName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Name of the app\'s own vault (approval signing key, webhook token).')
param keyVaultName string

@description('Vault secret holding the previous approval signing key during a rotation; empty: none.')
param approvalSigningKeyPreviousSecret string = ''

@description('Public base URL of approval links; empty: https://$WEBSITE_HOSTNAME.')
param approvalBaseUrl string = ''

@description('Release policy file inside the package; empty: release-policy.yaml.')
param releasePolicyFile string = ''

@description('NCRONTAB schedule of the registry reconciler.')
param reconcileSchedule string = '0 */5 * * * *'

@description('Durable Task Scheduler endpoint; empty when the task hub lives in Azure Storage.')
param durableSchedulerEndpoint string = ''

@description('OTLP/HTTP endpoint for the app\'s telemetry when there is no Application Insights; empty: none.')
param otlpEndpoint string = ''

var vaultRef = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='
var dtsConnection = empty(durableSchedulerEndpoint) ? '' : 'Endpoint=${durableSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'

var appSettings = {
  // Every DefaultAzureCredential() in the code picks the user-assigned identity.
  AZURE_CLIENT_ID: identityClientId
  // Identity-based host storage (task hub, timers) and the ledger (shared/ledger/connection.py).
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // host.json's telemetryMode OpenTelemetry: the worker sends its own logs (README, Telemetry).
  PYTHON_ENABLE_OPENTELEMETRY: 'true'
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint
  OTEL_SERVICE_NAME: 'release-workflow'
  RELEASE_POLICY_FILE: releasePolicyFile
  REGISTRY_WEBHOOK_TOKEN: '${vaultRef}registry-webhook-token)'
  LEDGER_TABLE_PREFIX: 'release'
  RECONCILE_MAX_IMAGES: '20'
  RECONCILE_SCHEDULE: reconcileSchedule
  APPROVAL_SIGNING_KEY: '${vaultRef}approval-signing-key)'
  APPROVAL_SIGNING_KEY_PREVIOUS: empty(approvalSigningKeyPreviousSecret) ? '' : '${vaultRef}${approvalSigningKeyPreviousSecret})'
  APPROVAL_BASE_URL: approvalBaseUrl
  // Approvers are taken from the App Service Authentication sign-in.
  APPROVAL_IDENTITY: 'appservice'
  // Read by host.dts.json only (the Durable Task Scheduler backend; task hub ReleaseHub).
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: dtsConnection
}

output appSettings object = appSettings
