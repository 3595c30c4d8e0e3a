-- The troubleshooting map: what the connector answers when something fails.
--
-- Operators edit this file and reload (`aurora reload` or SIGHUP); lua/aurora/errors.lua applies
-- it (docs/api.md, "Errors"). Three parts:
--
--   kinds      one entry per error kind a handler reports: `error` (the message; the seed's
--              wording, which the front end shows), `status` (HTTP status), `solution` (steps
--              shown to the user, most specific first), and optional `timeout_status` (status
--              when the upstream timed out), `throttle` (pass an upstream 429 through, with its
--              Retry-After), `unavailable_status` (status when the upstream was unreachable).
--   aadsts     Entra ID error codes (identity errors' `code`, "AADSTS7000215"): `kind` (what
--              errors.classify answers), `solution` (steps put before the kind's), optional
--              `status` (overrides the kind's).
--   arm        ARM error codes (`error.code` of an ARM error body) and the transport words of
--              aurora.http / aurora.identity ("timeout", "dns", ...): `solution`, optional
--              `status` (any kind) or `statuses` ({kind = status}), optional `kind` (for
--              errors.classify).
--
-- Keep every solution a list of plain sentences; never put a secret or a URL with a token in
-- here. Placeholders are written <LIKE_THIS> for the user to fill in.
local CHECK_TENANT = "Check the tenant id: it is the Directory (tenant) ID shown in the Azure " ..
    "portal under Microsoft Entra ID > Overview (or `az account show --query tenantId -o tsv`)."
local CHECK_APP = "Check the client id: it is the Application (client) ID of the app " ..
    "registration (`az ad sp list --display-name <NAME> --query [].appId -o tsv`)."
local RESET_SECRET = "Create a new client secret with `az ad app credential reset --id <CLIENT_ID> " ..
    "--append --years 1` and connect again with the `password` it prints."
local ASSIGN_CONTRIBUTOR = "Give the service principal the Contributor role on the subscription: " ..
    "`az role assignment create --assignee <CLIENT_ID> --role Contributor --scope " ..
    "/subscriptions/<SUBSCRIPTION_ID>` (Reader is enough for Ask mode)."
local CHECK_SUBSCRIPTION = "Check the subscription's state in the Azure portal (Subscriptions): " ..
    "it must be Enabled, not Disabled, Warned or Past due."
local CHECK_NETWORK = "Check that this server can reach login.microsoftonline.com and " ..
    "management.azure.com on port 443: DNS, firewall rules and the HTTPS_PROXY / NO_PROXY settings."
local RETRY_LATER = "Retry in a minute; if it keeps failing, check https://status.azure.com."
local SETUP_SCRIPT = "Run the setup script (GET /azure/setup-script) to create a service principal " ..
    "with the right role and print the credentials to connect with."

return {
    kinds = {
        invalid_credentials = {
            error = "Invalid Azure credentials",
            status = 401,
            solution = {
                CHECK_TENANT,
                CHECK_APP,
                "Check the client secret: use the secret's Value, not its Secret ID, and make sure " ..
                    "it has not expired (Entra ID > App registrations > Certificates & secrets).",
                SETUP_SCRIPT,
            },
        },
        no_enabled_subscription = {
            error = "No enabled subscription found",
            status = 403,
            solution = {
                CHECK_SUBSCRIPTION,
                ASSIGN_CONTRIBUTOR,
                "If you gave a subscription id, check that it belongs to the tenant you connect " ..
                    "with (`az account list --query \"[].{id:id, state:state}\" -o table`).",
                "Role assignments can take a few minutes to apply; retry after that.",
            },
        },
        clusters_failed = {
            error = "Failed to fetch AKS clusters",
            status = 502,
            timeout_status = 504,
            throttle = true,
            solution = {
                ASSIGN_CONTRIBUTOR,
                "Check that the Microsoft.ContainerService resource provider is registered: " ..
                    "`az provider show -n Microsoft.ContainerService --query registrationState`.",
                RETRY_LATER,
            },
        },
        admin_credentials_failed = {
            error = "Admin credentials failed",
            status = 502,
            timeout_status = 504,
            throttle = true,
            solution = {
                "The principal needs the Microsoft.ContainerService/managedClusters/" ..
                    "listClusterAdminCredential/action permission (Contributor or Azure " ..
                    "Kubernetes Service Cluster Admin Role) on the cluster.",
                "If the cluster has local accounts disabled, admin credentials do not exist: " ..
                    "use Entra ID (Azure RBAC) access instead.",
                RETRY_LATER,
            },
        },
        metrics_server_failed = {
            error = "Metrics server deployment failed",
            status = 502,
            solution = {
                "Look at the metrics-server Deployment in kube-system " ..
                    "(`kubectl -n kube-system describe deployment metrics-server`): image pulls " ..
                    "from registry.k8s.io must be allowed and the nodes must have room for it.",
                "Retry with POST /azure/clusters/<RESOURCE_GROUP>/<NAME>/metrics-server in Do mode.",
            },
        },
        cluster_not_found = {
            error = "AKS cluster not found",
            status = 404,
            solution = {
                "Check the resource group and cluster name (GET /azure/clusters lists them) and " ..
                    "that its subscription is enabled (GET /api/azure-subscriptions).",
            },
        },
        token_failed = {
            error = "Failed to get Azure token",
            status = 502,
            timeout_status = 504,
            solution = {
                CHECK_NETWORK,
                "If you use a proxy that inspects TLS, add its CA certificate with AURORA_CA_BUNDLE.",
                RETRY_LATER,
            },
        },
        sp_not_found = {
            error = "Service principal not found",
            status = 404,
            solution = {
                "The app registration has no service principal in this tenant: create one with " ..
                    "`az ad sp create --id <CLIENT_ID>`.",
                CHECK_APP,
                CHECK_TENANT,
            },
        },
        not_connected = {
            error = "Azure account not connected",
            status = 401,
            solution = {
                "Connect an Azure account first: POST /azure/login with tenantId, clientId, " ..
                    "clientSecret (and optionally subscriptionId).",
                SETUP_SCRIPT,
            },
        },
        oauth_not_configured = {
            error = "Azure sign-in (OAuth) is not configured",
            status = 501,
            solution = {
                "Register an app in Microsoft Entra ID (App registrations > New registration, " ..
                    "accounts in any organizational directory) with the redirect URI " ..
                    "https://<AURORA_HOST>/azure/callback (type Web), and give it the delegated " ..
                    "API permission Azure Service Management > user_impersonation.",
                "Create a client secret for it and set AZURE_CLIENT_ID (its Application ID) and " ..
                    "AZURE_CLIENT_SECRET (the secret's Value) for this server, plus " ..
                    "AZURE_REDIRECT_URI when the callback URL differs from what the browser " ..
                    "sees; then restart it.",
                "Service-principal login (POST /azure/login) works without this.",
            },
        },
        oauth_failed = {
            error = "Azure sign-in failed",
            status = 400,
            solution = {
                "Start the sign-in again (GET /azure/oauth/login): a sign-in link works once " ..
                    "and for 10 minutes.",
                "If Entra ID refused the sign-in, check that your account may consent to the " ..
                    "app (or ask an administrator to grant consent for the organization).",
            },
        },
        forbidden_mode = {
            error = "Do-mode credentials required",
            status = 403,
            solution = {
                "This action changes resources and needs Do mode (`X-Aurora-Mode: do`) with " ..
                    "Contributor credentials.",
                "Connect Contributor credentials with POST /azure/login (the read-only " ..
                    "credentials only serve Ask mode).",
            },
        },
        bad_request = {
            error = "Invalid request",
            status = 400,
            solution = {
                "Fix the field named in the error and send the request again (docs/api.md lists " ..
                    "every field and its aliases).",
            },
        },
        storage_failed = {
            error = "Failed to store Azure credentials",
            status = 500,
            unavailable_status = 503,
            solution = {
                "Check the secret store: AURORA_DATA_DIR must be writable by the service, or, " ..
                    "with Vault, VAULT_ADDR must be reachable, unsealed, and the token allowed " ..
                    "to write the KV v2 mount.",
                RETRY_LATER,
            },
        },
        resources_failed = {
            -- GET /azure/resources when no category could be read (one failing category is
            -- reported inside a 200 answer instead).
            error = "Failed to discover Azure resources",
            status = 502,
            timeout_status = 504,
            throttle = true,
            solution = {
                "Give the service principal Reader (or Contributor) on each enabled " ..
                    "subscription: `az role assignment create --assignee <CLIENT_ID> --role " ..
                    "Reader --scope /subscriptions/<SUBSCRIPTION_ID>`.",
                "Reader also allows Azure Resource Graph (Microsoft.ResourceGraph/resources/" ..
                    "read), the fast path; without it each resource type is listed on its own.",
                "Check that the resource providers are registered: `az provider list --query " ..
                    "\"[?registrationState=='Registered'].namespace\" -o tsv`.",
                RETRY_LATER,
            },
        },
        costs_failed = {
            -- GET /azure/costs (Cost Management query API).
            error = "Failed to fetch Azure costs",
            status = 502,
            timeout_status = 504,
            throttle = true,
            solution = {
                "Give the service principal the Cost Management Reader role on each enabled " ..
                    "subscription: `az role assignment create --assignee <CLIENT_ID> --role " ..
                    "\"Cost Management Reader\" --scope /subscriptions/<SUBSCRIPTION_ID>`, then " ..
                    "wait a few minutes for the assignment to apply.",
                "Cost data exists only for subscriptions whose offer Cost Management supports " ..
                    "(pay-as-you-go, Enterprise Agreement, Microsoft Customer Agreement); check " ..
                    "Cost Management + Billing > Cost analysis in the portal.",
                "Cost Management allows only a few queries per minute per subscription: after " ..
                    "a 429, wait the Retry-After seconds (answers are cached for an hour).",
                RETRY_LATER,
            },
        },
        upstream = {
            error = "Azure request failed",
            status = 502,
            timeout_status = 504,
            throttle = true,
            solution = {
                RETRY_LATER,
                CHECK_NETWORK,
            },
        },
    },

    aadsts = {
        AADSTS7000215 = {
            kind = "invalid_credentials",
            solution = {
                "The client secret is wrong: use the secret's Value (shown once, when it was " ..
                    "created), not its Secret ID.",
                RESET_SECRET,
            },
        },
        AADSTS7000222 = {
            kind = "invalid_credentials",
            solution = {
                "The client secret has expired.",
                RESET_SECRET,
            },
        },
        AADSTS700016 = {
            -- No app with this id in the tenant: "Service principal not found" (404). Reported as
            -- invalid_credentials it still gets these steps.
            kind = "sp_not_found",
            solution = {
                "No application with this client id exists in the tenant: check the client id " ..
                    "and that the app was registered in this tenant, not another one.",
                CHECK_APP,
            },
        },
        AADSTS90002 = {
            kind = "invalid_credentials",
            solution = {
                "The tenant was not found: check the tenant id, and the cloud (AZURE_CLOUD) it " ..
                    "belongs to.",
                CHECK_TENANT,
            },
        },
        AADSTS900023 = {
            kind = "invalid_credentials",
            solution = {
                "The tenant id is not valid: it must be a GUID or a domain such as " ..
                    "contoso.onmicrosoft.com.",
                CHECK_TENANT,
            },
        },
        AADSTS7000229 = {
            kind = "invalid_credentials",
            solution = {
                "The application has no service principal in this tenant: create one with " ..
                    "`az ad sp create --id <CLIENT_ID>`.",
            },
        },
        AADSTS700027 = {
            kind = "invalid_credentials",
            solution = {
                "The certificate's signature was not accepted: upload the certificate to the " ..
                    "app registration (`az ad app credential reset --id <CLIENT_ID> --cert " ..
                    "@cert.pem --append`) and check that the key matches it.",
            },
        },
        AADSTS70011 = {
            kind = "token_failed",
            status = 502,
            solution = {
                "Entra ID refused the token scope: check AZURE_CLOUD matches the tenant's cloud.",
            },
        },
        AADSTS1002012 = {
            kind = "token_failed",
            status = 502,
            solution = {
                "Entra ID refused the token scope: check AZURE_CLOUD matches the tenant's cloud.",
            },
        },
        AADSTS500011 = {
            kind = "sp_not_found",
            solution = {
                "The resource's service principal (Azure Resource Manager) is missing from the " ..
                    "tenant; check AZURE_CLOUD and that the tenant has an Azure subscription.",
            },
        },
        -- The user sign-in (lua/aurora/oauth.lua): codes of the authorization-code flow.
        AADSTS54005 = {
            solution = { "The sign-in code was already used: start the sign-in again." },
        },
        AADSTS70008 = {
            solution = { "The sign-in code or refresh token expired: sign in again." },
        },
        AADSTS501481 = {
            solution = {
                "The PKCE verifier did not match the sign-in request: start the sign-in again " ..
                    "from GET /azure/oauth/login, in one browser.",
            },
        },
        AADSTS700082 = {
            solution = {
                "The stored sign-in expired after a long time unused: sign in again with " ..
                    "GET /azure/oauth/login.",
            },
        },
        AADSTS9002313 = {
            solution = {
                "Entra ID no longer accepts the stored sign-in (revoked or already used): sign " ..
                    "in again with GET /azure/oauth/login.",
            },
        },
    },

    arm = {
        AuthorizationFailed = {
            status = 403,
            solution = {
                "The service principal lacks a role for this call: " .. ASSIGN_CONTRIBUTOR,
                "Role assignments can take a few minutes to apply; retry after that.",
            },
        },
        LinkedAuthorizationFailed = {
            status = 403,
            solution = { ASSIGN_CONTRIBUTOR },
        },
        RBACAccessDenied = {
            status = 403,
            solution = { ASSIGN_CONTRIBUTOR },
        },
        BadRequest = {
            -- listClusterAdminCredential on a cluster with local accounts disabled (wire-formats §0.5).
            statuses = { admin_credentials_failed = 403 },
            solution = {
                "Azure refused the request as malformed or not allowed for this resource; " ..
                    "for admin credentials, check whether the cluster disables local accounts.",
            },
        },
        SubscriptionNotFound = {
            kind = "no_enabled_subscription",
            status = 404,
            solution = {
                "The subscription does not exist or the principal cannot see it: check the " ..
                    "subscription id and the principal's role assignments.",
            },
        },
        ResourceNotFound = {
            status = 404,
            solution = { "The resource was not found: it may have been deleted or moved." },
        },
        ResourceGroupNotFound = {
            status = 404,
            solution = { "The resource group was not found: check its name." },
        },
        MissingSubscriptionRegistration = {
            solution = {
                "Register the resource provider: `az provider register --namespace <NAMESPACE>`.",
            },
        },
        NoRegisteredProviderFound = {
            solution = {
                "The API version or location is not supported by the resource provider.",
            },
        },
        InvalidAuthenticationToken = {
            solution = {
                "Azure Resource Manager refused the token: check AZURE_CLOUD and " ..
                    "AZURE_RESOURCE_MANAGER_ENDPOINT point at the same cloud.",
            },
        },
        ExpiredAuthenticationToken = {
            solution = { "The token expired on the way; retry the request." },
        },
        SubscriptionRequestsThrottled = {
            solution = { "Azure throttled the subscription's requests; wait for Retry-After seconds." },
        },
        InternalServerError = {
            solution = {
                "Azure Resource Manager had an internal error (HTTP 5xx); it is usually " ..
                    "temporary and was already retried.",
            },
        },
        -- Why login found no subscription to use in ARM's list (no_enabled_subscription;
        -- lua/handlers/azure.lua).
        not_enabled = {
            solution = {
                "The subscription you gave is not Enabled (its state is in the message): give " ..
                    "an Enabled one, or leave subscriptionId out to use the first Enabled one.",
            },
        },
        not_visible = {
            solution = {
                "The subscription you gave is not visible to these credentials: check the id, " ..
                    "that it belongs to this tenant, and that the principal has a role on it.",
            },
        },
        none_visible = {
            solution = {
                "The service principal has no role on any subscription: " .. ASSIGN_CONTRIBUTOR,
            },
        },
        none_enabled = {
            solution = {
                "Every subscription the principal can see is Disabled, Warned or Past due: " ..
                    "re-enable one, or give the principal a role on an Enabled one.",
            },
        },
        -- Cluster access (lua/aurora/aks.lua).
        private_cluster = {
            solution = {
                "The cluster is private: its API server has only a private FQDN. Run Aurora in " ..
                    "(or peered with) the cluster's virtual network with DNS for the private zone, " ..
                    "or enable a public API server with authorized IP ranges.",
            },
        },
        cluster_stopped = {
            solution = {
                "The cluster is stopped: start it with `az aks start -g <RESOURCE_GROUP> -n <NAME>` " ..
                    "(its status is checked again within five minutes, or at once with ?refresh=1).",
            },
        },
        cluster_unreachable = {
            solution = {
                "The cluster's API server did not answer: check that the cluster is running " ..
                    "(`az aks show --query powerState`), and the API server's authorized IP ranges " ..
                    "and this server's firewall and proxy settings.",
            },
        },
        cluster_tls = {
            solution = {
                "The API server's certificate does not verify against the cluster CA from the " ..
                    "kubeconfig: if the cluster certificates were rotated, retry in a few minutes; " ..
                    "a TLS-inspecting proxy between Aurora and the cluster breaks verification.",
            },
        },
        certificate_expired = {
            solution = {
                "The cluster's admin client certificate has expired: rotate the cluster " ..
                    "certificates with `az aks rotate-certs -g <RESOURCE_GROUP> -n <NAME>`.",
            },
        },
        -- Transport words (aurora.http, aurora.identity).
        timeout = { kind = "token_failed", solution = { "The upstream did not answer in time." } },
        connect = {
            kind = "token_failed",
            solution = { "The connection to the upstream failed (refused or reset)." },
        },
        dns = {
            kind = "token_failed",
            solution = { "The upstream host name did not resolve: check DNS on this server." },
        },
        tls = {
            kind = "token_failed",
            solution = {
                "The TLS handshake failed: check the server's clock, the system CA certificates " ..
                    "and AURORA_CA_BUNDLE.",
            },
        },
        unavailable = {
            kind = "token_failed",
            solution = { "The upstream is throttling or unavailable (429/5xx)." },
        },
        bad_reply = {
            kind = "token_failed",
            solution = { "The upstream answered with something that is not a valid reply." },
        },
        invalid = {
            kind = "invalid_credentials",
            solution = {
                "The tenant id or client id holds characters that do not belong in one, or the " ..
                    "certificate or key does not load.",
            },
        },
    },
}
