// The Function App on Flex Consumption (Linux, Python 3.11), running as the user-assigned
// identity, with App Service Authentication (Microsoft Entra ID) in front of everything but
// the two registry routes.

@description('Where the app goes.')
param location string

@description('Tags for the plan and the app.')
param tags object

@description('Flex Consumption plan name.')
param planName string

@description('Function App name.')
param appName string

@description('Resource ID of the user-assigned identity.')
param identityId string

@description('Blob endpoint of the storage account (ends with /).')
param blobEndpoint string

@description('Container the app package is deployed into.')
param deploymentContainerName string

@description('App settings (modules/app-settings.bicep).')
param appSettings object

@description('Client ID of the Entra app registration approvers sign in with.')
param authClientId string

@description('Tenant of that app registration.')
param authTenantId string

@description('Most instances Flex Consumption may scale out to.')
param maximumInstanceCount int = 40

@description('Memory per instance, MB (512, 2048 or 4096).')
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  #checkov:skip=CKV_AZURE_225: zone-redundant Flex Consumption is regional and bills always-ready instances at rest; opt in where the region offers it
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  #checkov:skip=CKV_AZURE_222: registries (Event Grid, ACR webhooks) and approvers reach the app over the internet; sign-in is enforced by App Service Authentication
  #checkov:skip=CKV_AZURE_17: registries and Event Grid cannot present client certificates; they authenticate by bearer token or system key
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  #checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero; always-ready instances would bill at rest (set scaleAndConcurrency.alwaysReady to add them)
  #checkov:skip=CKV_AZURE_213: Flex Consumption has no App Service health check; /api/health reports the app's state instead
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Sign-in required; registries cannot sign in, so exactly their two routes are excluded:
// /api/registry/events checks its own bearer token, /runtime/webhooks/eventgrid the
// Event Grid system key.
// checkov reads this config resource as if it were a whole web app; the skips below are the
// web-app checks that do not apply to an authsettingsV2 document.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  #checkov:skip=CKV_AZURE_13: this resource IS the App Service Authentication configuration (authsettingsV2, platform.enabled: true); the check looks for the v1 shape
  #checkov:skip=CKV_AZURE_222: public access is decided on the site (see its skip), not in authsettingsV2
  #checkov:skip=CKV_AZURE_88: Azure Files is a web-app content share; Flex Consumption deploys from a blob container
  parent: app
  #checkov:skip=CKV_AZURE_80: .NET Framework version does not apply: the app is Python
  #checkov:skip=CKV_AZURE_63: HTTP logging is a web-app setting; Functions logs requests to Application Insights
  #checkov:skip=CKV_AZURE_65: detailed error pages are a web-app setting; Functions logs errors to Application Insights
  #checkov:skip=CKV_AZURE_66: failed request tracing is a web-app setting; Functions traces requests in Application Insights
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/registry/events'
        '/runtime/webhooks/eventgrid'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: 'https://sts.windows.net/${authTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
    }
  }
}

output id string = app.id
output name string = app.name
output hostName string = app.properties.defaultHostName
