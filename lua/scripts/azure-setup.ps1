<#
.SYNOPSIS
Aurora: create an Azure service principal for the Aurora Azure connector.

.DESCRIPTION
Checks the Azure CLI, logs in if needed, picks a subscription, creates a service principal named
aurora-<random> with the Contributor role on it (Reader with -ReadOnly), optionally a second
Reader principal for Ask mode (-WithReader), and prints the JSON body for POST /azure/login.
Progress goes to the host, the JSON to the output, so

    .\aurora-azure-setup.ps1 > aurora-azure.json

leaves only the credentials in the file. Keep that file private: it holds client secrets.

.EXAMPLE
.\aurora-azure-setup.ps1 -Subscription 00000000-0000-0000-0000-000000000000 -WithReader
#>
[CmdletBinding()]
param(
    [string]$Subscription = "",
    [switch]$ReadOnly,
    [switch]$WithReader,
    [string]$NamePrefix = "aurora"
)

$ErrorActionPreference = "Stop"

$RoleIds = @{
    "Contributor" = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    "Reader"      = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
}

function Fail([string]$Message) {
    Write-Host "error: $Message" -ForegroundColor Red
    exit 1
}

function Invoke-Az {
    # Runs az with the given arguments; returns its stdout, or $null when it failed.
    $out = & az @args 2>$null
    if ($LASTEXITCODE -ne 0) { return $null }
    return $out
}

function New-RandomSuffix {
    $bytes = New-Object byte[] 6
    [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    return -join ($bytes | ForEach-Object { $_.ToString("x2") })
}

function Set-Role([string]$ObjectId, [string]$Role) {
    $scope = "/subscriptions/$Subscription"
    for ($i = 1; $i -le 6; $i++) {
        $ok = Invoke-Az role assignment create --assignee-object-id $ObjectId `
            --assignee-principal-type ServicePrincipal --role $Role --scope $scope --output none
        if ($null -ne $ok) { return $true }
        # Fallback: the ARM call itself (some packaged CLIs fail in `role assignment create`).
        $body = @{ properties = @{
                roleDefinitionId = "$scope/providers/Microsoft.Authorization/roleDefinitions/$($RoleIds[$Role])"
                principalId      = $ObjectId
                principalType    = "ServicePrincipal"
            } } | ConvertTo-Json -Compress
        $bodyFile = New-TemporaryFile
        Set-Content -Path $bodyFile -Value $body
        $url = "$scope/providers/Microsoft.Authorization/roleAssignments/$([guid]::NewGuid())?api-version=2022-04-01"
        $ok = Invoke-Az rest --method put --url $url --body "@$bodyFile" --output none
        Remove-Item $bodyFile -Force
        if ($null -ne $ok) { return $true }
        # A new principal takes a moment to replicate to Azure RBAC.
        if ($i -lt 6) { Start-Sleep -Seconds (5 * $i) }
    }
    return $false
}

function New-AuroraPrincipal([string]$Role) {
    $name = "$NamePrefix-$(New-RandomSuffix)"
    Write-Host "Creating service principal $name ..."
    $json = Invoke-Az ad sp create-for-rbac --name $name --output json
    if ($null -eq $json) { Fail "could not create the service principal $name (you need permission to create app registrations)" }
    $sp = ($json -join "`n") | ConvertFrom-Json
    if (-not $sp.appId -or -not $sp.password) { Fail "az ad sp create-for-rbac did not return an appId and a password" }
    $oid = Invoke-Az ad sp show --id $sp.appId --query id --output tsv
    if ($null -eq $oid) { Fail "cannot find the service principal of $($sp.appId)" }
    Write-Host "Assigning $Role on /subscriptions/$Subscription to $name (appId $($sp.appId)) ..."
    if (-not (Set-Role ([string]$oid).Trim() $Role)) {
        Fail "could not assign $Role to $($sp.appId): you need Owner or User Access Administrator on the subscription; then run: az role assignment create --assignee $($sp.appId) --role $Role --scope /subscriptions/$Subscription"
    }
    Write-Host "Created $name (appId $($sp.appId)) with $Role."
    return $sp
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Fail "the Azure CLI (az) is not installed: see https://learn.microsoft.com/cli/azure/install-azure-cli"
}

if ($null -eq (Invoke-Az account show --output none)) {
    Write-Host "Not logged in to the Azure CLI; running az login ..."
    & az login --output none
    if ($LASTEXITCODE -ne 0) { Fail "az login failed" }
}

if (-not $Subscription) {
    $Subscription = Invoke-Az account show --query id --output tsv
    if ($null -eq $Subscription) { Fail "cannot read the current subscription" }
}
$accountJson = Invoke-Az account show --subscription $Subscription --output json
if ($null -eq $accountJson) { Fail "subscription $Subscription not found; list yours with: az account list --output table" }
$account = ($accountJson -join "`n") | ConvertFrom-Json
$Subscription = $account.id
Write-Host "Subscription: $($account.name) ($($account.id)), tenant $($account.tenantId), state $($account.state)"
if ($account.state -ne "Enabled") {
    Write-Host "warning: the subscription is $($account.state), not Enabled; Aurora only connects Enabled subscriptions" -ForegroundColor Yellow
}

$role = if ($ReadOnly) { "Reader" } else { "Contributor" }
$main = New-AuroraPrincipal $role
$result = [ordered]@{
    tenantId         = if ($main.tenant) { $main.tenant } else { $account.tenantId }
    clientId         = $main.appId
    clientSecret     = $main.password
    subscriptionId   = $account.id
    subscriptionName = $account.name
}
if ($WithReader) {
    $reader = New-AuroraPrincipal "Reader"
    $result.readOnlyCredentials = [ordered]@{
        tenantId       = if ($reader.tenant) { $reader.tenant } else { $account.tenantId }
        clientId       = $reader.appId
        clientSecret   = $reader.password
        subscriptionId = $account.id
    }
}

Write-Host "Done. POST the JSON below to /azure/login (role assignments can take a minute to apply)."
$result | ConvertTo-Json -Depth 4
