-- Field aliases accepted by POST /azure/login: the name a caller may send → the canonical name.
-- The seed's clients send the Azure CLI's names (`az ad sp create-for-rbac` prints appId,
-- password, tenant) or snake_case; edit this table to accept more. The same table applies to
-- the fields inside readOnlyCredentials.
return {
    tenant = "tenantId",
    tenant_id = "tenantId",
    appId = "clientId",
    client_id = "clientId",
    password = "clientSecret",
    client_secret = "clientSecret",
    subscription_id = "subscriptionId",
    subscription_name = "subscriptionName",
    read_only_credentials = "readOnlyCredentials",
    certificate_pem = "certificatePem",
    private_key_pem = "privateKeyPem",
}
