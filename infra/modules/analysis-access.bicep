// Read access for analysis queries (shared/analysis/): Log Analytics Reader on an Application
// Insights component or a Log Analytics workspace the policy queries (LogsQueryClient), or
// Monitoring Data Reader on an Azure Monitor workspace (managed Prometheus queries).

@description('Principal ID of the app\'s identity.')
param principalId string

@description('Resource ID of a component, a Log Analytics workspace or an Azure Monitor workspace.')
param targetId string

var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'
var monitoringDataReader = 'b0d8363b-8ddd-447d-831f-62ca05bff136'
var kind = toLower(split(targetId, '/')[6])
var name = last(split(targetId, '/'))

resource component 'Microsoft.Insights/components@2020-02-02' existing = if (kind == 'microsoft.insights') {
  name: name
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = if (kind == 'microsoft.operationalinsights') {
  name: name
}

resource monitorWorkspace 'Microsoft.Monitor/accounts@2023-04-03' existing = if (kind == 'microsoft.monitor') {
  name: name
}

resource componentReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (kind == 'microsoft.insights') {
  name: guid(targetId, principalId, logAnalyticsReader)
  scope: component
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
  }
}

resource workspaceReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (kind == 'microsoft.operationalinsights') {
  name: guid(targetId, principalId, logAnalyticsReader)
  scope: workspace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', logAnalyticsReader)
  }
}

resource prometheusReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (kind == 'microsoft.monitor') {
  name: guid(targetId, principalId, monitoringDataReader)
  scope: monitorWorkspace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringDataReader)
  }
}
