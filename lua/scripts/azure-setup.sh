#!/usr/bin/env bash
# Aurora: create an Azure service principal for the Aurora Azure connector.
#
# Checks the Azure CLI, logs in if needed, picks a subscription, creates a service principal
# named aurora-<random> with the Contributor role on it (Reader with --read-only), optionally a
# second Reader principal for Ask mode (--with-reader), and prints the JSON body for
# POST /azure/login on stdout. Everything else goes to stderr, so
#
#   bash aurora-azure-setup.sh > aurora-azure.json
#
# leaves only the credentials in the file. Keep that file private: it holds client secrets.
#
# Usage: aurora-azure-setup.sh [--subscription ID] [--read-only] [--with-reader]
#                              [--name-prefix PREFIX] [--help]
set -euo pipefail

SUBSCRIPTION=""
ROLE="Contributor"
WITH_READER=0
PREFIX="aurora"


usage() {
    sed -n '2,14p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//' >&2 || true
    cat >&2 <<'EOF'
Options:
  --subscription ID     subscription to grant access to (default: the CLI's current one)
  --read-only           give the principal Reader instead of Contributor
  --with-reader         also create a Reader principal for Ask mode (readOnlyCredentials)
  --name-prefix PREFIX  principal names are PREFIX-<random> (default: aurora)
EOF
}


say() {
    printf '%s\n' "$*" >&2
}


die() {
    say "error: $*"
    exit 1
}


# JSON string escaping for the values we print (ids, secrets, a subscription name).
json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    s=${s//$'\n'/\\n}
    printf '"%s"' "$s"
}


random_suffix() {
    local r
    r=$(od -An -N6 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n') || true
    if [ -z "$r" ]; then
        r=$(printf '%04x%04x%04x' "$RANDOM" "$RANDOM" "$RANDOM")
    fi
    printf '%s' "$r"
}


random_guid() {
    local h
    h=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s-%s-4%s-8%s-%s' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}


# The built-in role ids (the same in every tenant and cloud).
role_guid() {
    case $1 in
        Contributor) echo b24988ac-6180-42a0-ab88-20f7382dd24c ;;
        Reader) echo acdd72a7-3385-48ef-bd42-f606fba81ae7 ;;
        *) return 1 ;;
    esac
}


# assign_role OBJECT_ID ROLE: ROLE for the principal on the subscription. Tries
# `az role assignment create`, then the ARM call itself through `az rest` (some packaged CLIs,
# Debian's 2.45 among them, fail in `role assignment create` with an AttributeError).
assign_role() {
    local oid=$1 role=$2 scope="/subscriptions/$SUBSCRIPTION" body i
    for i in 1 2 3 4 5 6; do
        if az role assignment create --assignee-object-id "$oid" \
            --assignee-principal-type ServicePrincipal --role "$role" --scope "$scope" \
            --output none >/dev/null 2>&1; then
            return 0
        fi
        body=$(printf '{"properties": {"roleDefinitionId": "%s/providers/Microsoft.Authorization/roleDefinitions/%s", "principalId": "%s", "principalType": "ServicePrincipal"}}' \
            "$scope" "$(role_guid "$role")" "$oid")
        if az rest --method put --output none \
            --url "$scope/providers/Microsoft.Authorization/roleAssignments/$(random_guid)?api-version=2022-04-01" \
            --body "$body" >/dev/null 2>&1; then
            return 0
        fi
        # A new principal takes a moment to replicate to Azure RBAC.
        [ "$i" -eq 6 ] || sleep $((i * 5))
    done
    return 1
}


# create_sp ROLE: creates PREFIX-<random> with a client secret, then gives it ROLE on the
# subscription; sets SP_APP_ID, SP_SECRET and SP_TENANT.
create_sp() {
    local role=$1 name out oid
    name="$PREFIX-$(random_suffix)"
    say "Creating service principal $name ..."
    out=$(az ad sp create-for-rbac --name "$name" \
        --query "[appId, password, tenant]" --output tsv) ||
        die "could not create the service principal $name (you need permission to create app registrations)"
    SP_APP_ID=$(sed -n 1p <<<"$out")
    SP_SECRET=$(sed -n 2p <<<"$out")
    SP_TENANT=$(sed -n 3p <<<"$out")
    if [ -z "$SP_APP_ID" ] || [ -z "$SP_SECRET" ]; then
        die "az ad sp create-for-rbac did not return an appId and a password"
    fi
    oid=$(az ad sp show --id "$SP_APP_ID" --query id --output tsv) ||
        die "cannot find the service principal of $SP_APP_ID"
    say "Assigning $role on /subscriptions/$SUBSCRIPTION to $name (appId $SP_APP_ID) ..."
    assign_role "$oid" "$role" ||
        die "could not assign $role to $SP_APP_ID: you need Owner or User Access Administrator on the subscription; then run: az role assignment create --assignee $SP_APP_ID --role $role --scope /subscriptions/$SUBSCRIPTION"
    say "Created $name (appId $SP_APP_ID) with $role."
}


while [ $# -gt 0 ]; do
    case $1 in
        --subscription)
            [ $# -ge 2 ] || die "--subscription needs a value"
            SUBSCRIPTION=$2
            shift 2
            ;;
        --subscription=*)
            SUBSCRIPTION=${1#*=}
            shift
            ;;
        --read-only)
            ROLE="Reader"
            shift
            ;;
        --with-reader)
            WITH_READER=1
            shift
            ;;
        --name-prefix)
            [ $# -ge 2 ] || die "--name-prefix needs a value"
            PREFIX=$2
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage
            die "unknown argument: $1"
            ;;
    esac
done

if ! command -v az >/dev/null 2>&1; then
    die "the Azure CLI (az) is not installed: see https://learn.microsoft.com/cli/azure/install-azure-cli"
fi

if ! az account show --output none >/dev/null 2>&1; then
    say "Not logged in to the Azure CLI; running az login ..."
    az login --output none >&2 || die "az login failed"
fi

if [ -z "$SUBSCRIPTION" ]; then
    SUBSCRIPTION=$(az account show --query id --output tsv) ||
        die "cannot read the current subscription"
fi
account=$(az account show --subscription "$SUBSCRIPTION" \
    --query "[id, name, tenantId, state]" --output tsv) ||
    die "subscription $SUBSCRIPTION not found; list yours with: az account list --output table"
SUBSCRIPTION=$(sed -n 1p <<<"$account")
SUBSCRIPTION_NAME=$(sed -n 2p <<<"$account")
TENANT=$(sed -n 3p <<<"$account")
STATE=$(sed -n 4p <<<"$account")
say "Subscription: $SUBSCRIPTION_NAME ($SUBSCRIPTION), tenant $TENANT, state $STATE"
if [ "$STATE" != "Enabled" ]; then
    say "warning: the subscription is $STATE, not Enabled; Aurora only connects Enabled subscriptions"
fi

create_sp "$ROLE"
MAIN_APP_ID=$SP_APP_ID
MAIN_SECRET=$SP_SECRET
MAIN_TENANT=${SP_TENANT:-$TENANT}

READER_JSON=""
if [ "$WITH_READER" -eq 1 ]; then
    create_sp "Reader"
    READER_JSON=$(printf ',\n  "readOnlyCredentials": {\n    "tenantId": %s,\n    "clientId": %s,\n    "clientSecret": %s,\n    "subscriptionId": %s\n  }' \
        "$(json_string "${SP_TENANT:-$TENANT}")" "$(json_string "$SP_APP_ID")" \
        "$(json_string "$SP_SECRET")" "$(json_string "$SUBSCRIPTION")")
fi

say "Done. POST the JSON below to /azure/login (role assignments can take a minute to apply)."
printf '{\n  "tenantId": %s,\n  "clientId": %s,\n  "clientSecret": %s,\n  "subscriptionId": %s,\n  "subscriptionName": %s%s\n}\n' \
    "$(json_string "$MAIN_TENANT")" "$(json_string "$MAIN_APP_ID")" \
    "$(json_string "$MAIN_SECRET")" "$(json_string "$SUBSCRIPTION")" \
    "$(json_string "$SUBSCRIPTION_NAME")" "$READER_JSON"
