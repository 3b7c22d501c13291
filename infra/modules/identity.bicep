// The one user-assigned identity the Function App runs as (AZURE_CLIENT_ID points every
// DefaultAzureCredential in the code at it).

@description('Where the identity goes.')
param location string

@description('Tags for the identity.')
param tags object

@description('Identity name.')
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
