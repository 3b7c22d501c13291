// The app's storage account: Durable task hub, ledger tables, Flex deployment packages.
// No shared keys: the host, the ledger and deployments all use the app's identity.

@description('Where the account goes.')
param location string

@description('Tags for the account.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
param name string

@description('Blob container Flex Consumption deploys the app package into.')
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  #checkov:skip=CKV_AZURE_206: LRS keeps three copies in one datacenter at half GRS's price at rest; choose Standard_GRS when the ledger's history must survive a regional outage
  #checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its storage over the public endpoint; access is Entra-only (no shared keys)
  #checkov:skip=CKV_AZURE_59: as CKV_AZURE_35: the public endpoint is needed without VNet integration; anonymous and key access are off
  sku: {
    name: 'Standard_LRS'
  }
  #checkov:skip=CKV_AZURE_43: the name comes from main.bicep ('st' + uniqueString: 15 lowercase letters and digits); checkov evaluates the parameter across modules inconsistently (it passed and failed on the same files)
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
