// fhirgate on Azure Container Apps (issue 10, item 7). Not built or run by
// the test command: deploy with
//   az deployment group create -g <rg> -f deploy/azure/main.bicep \
//     -p image=<registry>/fhirgate:<tag> publicHost=<host> ...
//
// What it sets up:
// - a user-assigned managed identity, used to pull the image, to read the
//   secrets from Key Vault (Key Vault references: nothing secret is in the
//   template or the app's configuration) and, through IMDS, to write Bulk
//   Data files to Blob Storage (fhirgate's object_store client falls back to
//   the managed identity when no key, SAS or client secret is configured);
// - a shared Azure Files volume as the data dir, so every replica signs and
//   verifies tokens with the same keys ({data dir}/keys);
// - the Container App: ingress on 8080 (TLS terminated by Container Apps,
//   HTTP/1.1 and 2), at least two replicas sharing PostgreSQL (state, consent
//   index, bulk jobs, ledger) so any replica can finish a flow another began,
//   liveness on /healthz and readiness on /readyz;
// - the settings: the FHIR service of Azure Health Data Services as the
//   upstream with Entra ID client credentials, the PostgreSQL URL and the
//   Blob container for exports.
// The Key Vault, the PostgreSQL flexible server, the storage account and the
// AHDS workspace are expected to exist (their names are parameters); grant
// the identity "Key Vault Secrets User" on the vault and "Storage Blob Data
// Contributor" on the container. Ledger anchoring in Azure Confidential
// Ledger ([audit.anchor]) needs more settings than the environment carries:
// mount a fhirgate.toml (FHIRGATE_CONFIG) and give its client secret as
// FHIRGATE_ANCHOR_CLIENT_SECRET from one more Key Vault reference.

@description('Container image, e.g. myregistry.azurecr.io/fhirgate:1.0.0')
param image string
@description('CIDRs of the Container Apps ingress (TLS-terminating proxy), comma-separated; the only peers fhirgate answers in plain HTTP')
param trustedProxies string = '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10'
@description('Registry server of the image (pulled with the managed identity)')
param registryServer string
@description('Public host name clients use (the FHIR base is https://<host>/fhir)')
param publicHost string
@description('Existing Container Apps environment')
param environmentName string
@description('Key Vault holding the secrets below')
param keyVaultName string
@description('AHDS FHIR service URL, e.g. https://ws-fhir.fhir.azurehealthcareapis.com')
param fhirServiceUrl string
@description('Entra ID tenant id (token endpoint of the upstream client credentials)')
param tenantId string = subscription().tenantId
@description('Application (client) id fhirgate uses towards the FHIR service')
param upstreamClientId string
@description('Blob container (and optional prefix) for Bulk Data files, as az://<container>/<prefix>')
param bulkStorageUrl string
@description('Storage account of that container')
param storageAccountName string
param location string = resourceGroup().location
@description('Azure Files storage of the environment (Microsoft.App/managedEnvironments/storages) mounted as the data dir: the replicas must share the token signing keys in {data dir}/keys')
param dataStorageName string
param minReplicas int = 2
param maxReplicas int = 6

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'fhirgate-id'
  location: location
}

resource env 'Microsoft.App/managedEnvironments@2024-03-01' existing = {
  name: environmentName
}

var vault = 'https://${keyVaultName}${environment().suffixes.keyvaultDns}/secrets'

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: 'fhirgate'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    managedEnvironmentId: env.id
    configuration: {
      ingress: {
        external: true
        targetPort: 8080
        transport: 'auto'
        allowInsecure: false
      }
      registries: [
        { server: registryServer, identity: identity.id }
      ]
      // Key Vault references, read with the managed identity.
      secrets: [
        { name: 'database-url', keyVaultUrl: '${vault}/fhirgate-database-url', identity: identity.id }
        { name: 'upstream-client-secret', keyVaultUrl: '${vault}/fhirgate-upstream-client-secret', identity: identity.id }
      ]
    }
    template: {
      containers: [
        {
          name: 'fhirgate'
          image: image
          resources: { cpu: json('1.0'), memory: '2Gi' }
          env: [
            { name: 'FHIRGATE_PUBLIC_URL', value: 'https://${publicHost}' }
            { name: 'FHIRGATE_LISTEN', value: '0.0.0.0:8080' }
            // plain HTTP only from the ingress, which terminates TLS (its
            // envoy sits in the environment's private network; probes too)
            { name: 'FHIRGATE_TRUSTED_PROXIES', value: trustedProxies }
            { name: 'FHIRGATE_LOG_FORMAT', value: 'json' }
            { name: 'FHIRGATE_DEMO', value: '0' }
            { name: 'FHIRGATE_DATABASE_URL', secretRef: 'database-url' }
            { name: 'FHIRGATE_UPSTREAM_URL', value: fhirServiceUrl }
            { name: 'FHIRGATE_UPSTREAM_AUTH', value: 'entra' }
            { name: 'FHIRGATE_UPSTREAM_ENTRA_TOKEN_URL', value: '${environment().authentication.loginEndpoint}${tenantId}/oauth2/v2.0/token' }
            { name: 'FHIRGATE_UPSTREAM_ENTRA_CLIENT_ID', value: upstreamClientId }
            { name: 'FHIRGATE_UPSTREAM_ENTRA_CLIENT_SECRET', secretRef: 'upstream-client-secret' }
            { name: 'FHIRGATE_UPSTREAM_ENTRA_SCOPE', value: '${fhirServiceUrl}/.default' }
            { name: 'FHIRGATE_BULK_STORAGE_URL', value: bulkStorageUrl }
            { name: 'AZURE_STORAGE_ACCOUNT_NAME', value: storageAccountName }
            // object_store's managed identity: the user-assigned identity's client id
            { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
          ]
          probes: [
            { type: 'Liveness', httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 10 }
            { type: 'Readiness', httpGet: { path: '/readyz', port: 8080 }, periodSeconds: 5 }
          ]
          // one data dir for every replica: the signing keys (tokens minted by
          // one replica verify on the others) and the UDAP and CRD demo keys
          volumeMounts: [
            { volumeName: 'data', mountPath: '/var/lib/fhirgate' }
          ]
        }
      ]
      volumes: [
        { name: 'data', storageType: 'AzureFile', storageName: dataStorageName }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          { name: 'http', http: { metadata: { concurrentRequests: '100' } } }
        ]
      }
    }
  }
}

output fhirBase string = 'https://${publicHost}/fhir'
output identityPrincipalId string = identity.properties.principalId
