// What promotion needs on one registry (deployed in the registry's resource group): AcrPush to
// read manifests and retag into prod/ (shared/registry/promotion.py), and, when promotion
// imports into this registry from another ACR (shared/registry/acr_import.py), a custom role
// with ImportImage, which AcrPush does not grant.

@description('Principal ID of the app\'s identity.')
param principalId string

@description('Registry name.')
param registryName string

@description('Also grant ACR ImportImage (this registry is the target of a cross-registry promotion).')
param importImage bool = false

var acrPush = '8311e382-0749-4cb8-b61a-304f252e45ec'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource push 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, acrPush)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPush)
  }
}

resource importRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (importImage) {
  name: guid(resourceGroup().id, 'acr-import-image')
  properties: {
    roleName: 'ACR Image Importer ${uniqueString(resourceGroup().id)}'
    description: 'Import images into a container registry (ACR ImportImage), and read the registry.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerRegistry/registries/read'
          'Microsoft.ContainerRegistry/registries/importImage/action'
        ]
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource importer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (importImage) {
  name: guid(registry.id, principalId, 'acr-import-image')
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: importRole.id
  }
}
