// How registry pushes reach the app (deployed in the registry's resource group): an Event
// Grid subscription to the native trigger `registry_event_grid`, leaving out the app's own
// prod/ retags, or an ACR webhook to /api/registry/events with the bearer token.

@description('eventGrid or webhook.')
@allowed([
  'eventGrid'
  'webhook'
])
param mode string

@description('Registry name.')
param registryName string

@description('The registry\'s region (the system topic and the webhook live there).')
param registryLocation string

@description('Resource ID of the Function App.')
param functionAppId string

@description('Host name of the Function App.')
param functionAppHostName string

@secure()
@description('REGISTRY_WEBHOOK_TOKEN, sent by the ACR webhook as a bearer token.')
param webhookToken string = ''

@description('Event Grid system topic name (one per registry).')
param topicName string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (mode == 'eventGrid') {
  name: topicName
  location: registryLocation
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

resource pushes 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (mode == 'eventGrid') {
  parent: topic
  name: 'releases'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/registry_event_grid'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
      ]
      advancedFilters: [
        {
          operatorType: 'StringNotBeginsWith'
          key: 'data.target.repository'
          values: [
            'prod/'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

resource webhook 'Microsoft.ContainerRegistry/registries/webhooks@2023-07-01' = if (mode == 'webhook') {
  parent: registry
  name: 'releases'
  location: registryLocation
  properties: {
    actions: [
      'push'
    ]
    serviceUri: 'https://${functionAppHostName}/api/registry/events'
    customHeaders: {
      Authorization: 'Bearer ${webhookToken}'
    }
    status: 'enabled'
    scope: ''
  }
}
