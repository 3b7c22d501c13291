// The Kubernetes RBAC role the Entra-token path (shared/cluster/connection.py) needs on one
// AKS cluster with Azure RBAC for Kubernetes: Azure Kubernetes Service RBAC Writer (Deployments,
// ReplicaSets, Services, Jobs and the Secrets Helm keeps its releases in; no roles or bindings).
// Cluster-wide here; scope it to the release namespaces with
// `az role assignment create --scope <cluster id>/namespaces/<ns>` to narrow it.

@description('Principal ID of the app\'s identity.')
param principalId string

@description('AKS cluster name.')
param clusterName string

var aksRbacWriter = 'a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb'

resource cluster 'Microsoft.ContainerService/managedClusters@2024-05-01' existing = {
  name: clusterName
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, aksRbacWriter)
  scope: cluster
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', aksRbacWriter)
  }
}
