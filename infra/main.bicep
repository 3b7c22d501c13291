// `azd up` entry point: one resource group with the Function App and what it runs on, and the
// app identity's roles on the registry, the environments' vaults, the clusters and the
// monitoring resources the release policy names (each in its own resource group).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of the new resources (one that offers Flex Consumption).')
param location string

@description('Resource ID of the Azure Container Registry CI pushes to.')
param registryId string

@description('Region of that registry.')
param registryLocation string = location

@description('Resource ID of a separate production registry promotion imports into (ACR ImportImage); empty: prod/ in the same registry.')
param prodRegistryId string = ''

@description('How pushes reach the app: eventGrid (native trigger, prod/ left out), webhook (ACR webhook with the bearer token) or none.')
@allowed([
  'eventGrid'
  'webhook'
  'none'
])
param registryEvents string = 'eventGrid'

@description('Set by the postdeploy hook: the Event Grid subscription needs the function deployed.')
param appDeployed bool = false

@description('Durable Functions backend: azureStorage, or durableTaskScheduler (deploy host.dts.json as host.json).')
@allowed([
  'azureStorage'
  'durableTaskScheduler'
])
param durableBackend string = 'azureStorage'

@description('Comma-separated resource IDs of the environments\' Key Vaults (Key Vault Secrets User on each).')
param environmentKeyVaultIds string = ''

@description('Comma-separated resource IDs of the AKS clusters releases deploy to (Azure Kubernetes Service RBAC Writer).')
param aksClusterIds string = ''

@description('Comma-separated resource IDs of what analysis queries: Application Insights components and Log Analytics workspaces (Log Analytics Reader), Azure Monitor workspaces (Monitoring Data Reader).')
param analysisTargetIds string = ''

@description('Client ID of the Entra app registration approvers sign in with (App Service Authentication).')
param authClientId string

@description('Tenant of that app registration.')
param authTenantId string = tenant().tenantId

@secure()
@description('Approval link signing key (stored in the app\'s vault).')
param approvalSigningKey string

@secure()
@description('Bearer token for /api/registry/events (stored in the app\'s vault).')
param registryWebhookToken string

@secure()
@description('Random fill that lengthens azd\'s 15-character generated secrets to the 32 the app requires (modules/keyvault.bicep).')
param secretFill object = {}

@description('Principal ID of whoever runs azd (azd sets AZURE_PRINCIPAL_ID): Key Vault Secrets Officer on the app\'s vault.')
param deployerPrincipalId string = ''

@description('Vault secret holding the previous approval signing key during a rotation; empty: none.')
param approvalSigningKeyPreviousSecret string = ''

@description('Public base URL of approval links; empty: the app\'s host name.')
param approvalBaseUrl string = ''

@description('Release policy file in the package; empty: release-policy.yaml.')
param releasePolicyFile string = ''

@description('NCRONTAB schedule of the registry reconciler.')
param reconcileSchedule string = '0 */5 * * * *'

var tags = {
  'azd-env-name': environmentName
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var appName = 'func-${token}'
var deploymentContainerName = 'app-package-${token}'
var useScheduler = durableBackend == 'durableTaskScheduler'
var taskHubName = 'ReleaseHub' // host.json's hubName
var vaultIds = empty(environmentKeyVaultIds) ? [] : split(environmentKeyVaultIds, ',')
var clusterIds = empty(aksClusterIds) ? [] : split(aksClusterIds, ',')
var analysisIds = empty(analysisTargetIds) ? [] : split(analysisTargetIds, ',')
var registryParts = split(registryId, '/')
var prodParts = split(empty(prodRegistryId) ? registryId : prodRegistryId, '/')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-${token}'
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: 'log-${token}'
    appInsightsName: 'appi-${token}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${token}'
    deploymentContainerName: deploymentContainerName
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'vault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kv-${token}'
    approvalSigningKey: approvalSigningKey
    registryWebhookToken: registryWebhookToken
    deployerPrincipalId: deployerPrincipalId
    secretFill: secretFill
  }
}

module scheduler 'modules/durable-scheduler.bicep' = if (useScheduler) {
  name: 'scheduler'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'dts-${token}'
    taskHubName: taskHubName
    principalId: identity.outputs.principalId
  }
}

module settings 'modules/app-settings.bicep' = {
  name: 'settings'
  scope: rg
  params: {
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: vault.outputs.name
    approvalSigningKeyPreviousSecret: approvalSigningKeyPreviousSecret
    approvalBaseUrl: approvalBaseUrl
    releasePolicyFile: releasePolicyFile
    reconcileSchedule: reconcileSchedule
    durableSchedulerEndpoint: useScheduler ? scheduler.outputs.endpoint : ''
  }
}

module appRoles 'modules/app-roles.bicep' = {
  name: 'app-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module app 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  dependsOn: [
    appRoles
  ]
  params: {
    location: location
    tags: tags
    planName: 'plan-${token}'
    appName: appName
    identityId: identity.outputs.id
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appSettings: settings.outputs.appSettings
    authClientId: authClientId
    authTenantId: authTenantId
  }
}

module registryAccess 'modules/registry-access.bicep' = {
  name: 'registry-access'
  scope: resourceGroup(registryParts[2], registryParts[4])
  params: {
    principalId: identity.outputs.principalId
    registryName: last(registryParts)
  }
}

module prodRegistryAccess 'modules/registry-access.bicep' = if (!empty(prodRegistryId)) {
  name: 'prod-registry-access'
  scope: resourceGroup(prodParts[2], prodParts[4])
  params: {
    principalId: identity.outputs.principalId
    registryName: last(prodParts)
    importImage: true
  }
}

module vaultAccess 'modules/vault-access.bicep' = [for (id, i) in vaultIds: {
  name: 'vault-access-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    principalId: identity.outputs.principalId
    vaultName: last(split(id, '/'))
  }
}]

module aksAccess 'modules/aks-access.bicep' = [for (id, i) in clusterIds: {
  name: 'aks-access-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    principalId: identity.outputs.principalId
    clusterName: last(split(id, '/'))
  }
}]

module analysisAccess 'modules/analysis-access.bicep' = [for (id, i) in analysisIds: {
  name: 'analysis-access-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    principalId: identity.outputs.principalId
    targetId: id
  }
}]

module events 'modules/registry-events.bicep' = if (registryEvents == 'webhook' || (registryEvents == 'eventGrid' && appDeployed)) {
  name: 'registry-events'
  scope: resourceGroup(registryParts[2], registryParts[4])
  params: {
    mode: (registryEvents == 'webhook') ? 'webhook' : 'eventGrid'
    registryName: last(registryParts)
    registryLocation: registryLocation
    functionAppId: app.outputs.id
    functionAppHostName: app.outputs.hostName
    webhookToken: registryWebhookToken
    topicName: 'evgt-${last(registryParts)}'
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output APP_URL string = 'https://${app.outputs.hostName}'
output AUTH_REDIRECT_URI string = 'https://${app.outputs.hostName}/.auth/login/aad/callback'
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
