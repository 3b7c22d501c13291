// The Durable Task Scheduler backend (durableBackend = 'durableTaskScheduler'): a scheduler
// and its task hub; the app's identity gets Durable Task Data Contributor on the scheduler.

@description('Where the scheduler goes.')
param location string

@description('Tags for the scheduler.')
param tags object

@description('Scheduler name.')
param name string

@description('Task hub name: the hubName of host.json and host.dts.json.')
param taskHubName string

@description('Principal ID of the app\'s identity.')
param principalId string

@description('Scheduler SKU: Consumption (pay per action) or Dedicated (capacity units, billed at rest).')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: [
      '0.0.0.0/0'
    ]
    sku: {
      name: skuName
    }
  }
}

resource hub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource dataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, principalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = hub.name
