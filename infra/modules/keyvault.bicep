// The app's own vault: the app-level secrets its settings reference (approval signing key,
// registry webhook token). Each environment keeps its own vault for its secrets.

@description('Where the vault goes.')
param location string

@description('Tags for the vault.')
param tags object

@description('Vault name (3-24 characters).')
param name string

@secure()
@description('HMAC key the approval links are signed with (APPROVAL_SIGNING_KEY).')
param approvalSigningKey string

@secure()
@description('Bearer token registries send to /api/registry/events (REGISTRY_WEBHOOK_TOKEN).')
param registryWebhookToken string

@secure()
@description('Random fill for secrets shorter than 32 characters: azd generates 15-character passwords (secretOrRandomPassword), the app wants at least 32 (MIN_KEY_BYTES). Keys: signingKey1, signingKey2, webhookToken1, webhookToken2.')
param secretFill object = {}

@description('Principal ID of whoever runs azd (AZURE_PRINCIPAL_ID); empty: none. It gets Key Vault Secrets Officer so that azd reads the secrets back on the next provision instead of generating new ones.')
param deployerPrincipalId string = ''

var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var minSecretLength = 32 // shared/approvals/tokens.py MIN_KEY_BYTES
var fill = union({
  signingKey1: ''
  signingKey2: ''
  webhookToken1: ''
  webhookToken2: ''
}, secretFill)
// A value read back from the vault (or passed by hand) is long enough and kept as it is.
var signingKeyValue = (length(approvalSigningKey) >= minSecretLength) ? approvalSigningKey : '${approvalSigningKey}${fill.signingKey1}${fill.signingKey2}'
var webhookTokenValue = (length(registryWebhookToken) >= minSecretLength) ? registryWebhookToken : '${registryWebhookToken}${fill.webhookToken1}${fill.webhookToken2}'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  #checkov:skip=CKV_AZURE_109: the platform resolves Key Vault references over the public endpoint without VNet integration; access is Entra RBAC only
  #checkov:skip=CKV_AZURE_189: as CKV_AZURE_109
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource signingKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'approval-signing-key'
  #checkov:skip=CKV_AZURE_41: rotated by hand through APPROVAL_SIGNING_KEY_PREVIOUS; an expiry would silently stop approvals
  properties: {
    value: signingKeyValue
    contentType: 'text/plain'
  }
}

resource webhookToken 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'registry-webhook-token'
  #checkov:skip=CKV_AZURE_41: rotated together with the registry's webhook header; an expiry would silently stop ingestion
  properties: {
    value: webhookTokenValue
    contentType: 'text/plain'
  }
}

resource deployerOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
