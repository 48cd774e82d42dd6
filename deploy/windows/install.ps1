<#
.SYNOPSIS
  Installs (or removes) the Vigie agent as a Windows service where the MSI cannot be used.

.DESCRIPTION
  Copies vigie-agent.exe to "C:\Program Files\Vigie\", then runs
  `vigie-agent.exe service install`: C:\ProgramData\Vigie\ (agent.toml if absent, state\ for
  SYSTEM and Administrators only, logs\), the service "VigieAgent" (LocalSystem, delayed
  automatic start, restart after 1 then 5 minutes), the event log source, enrollment with the
  token (once: an enrolled machine keeps its enrollment), and the start.
  Run it in an elevated PowerShell, or as SYSTEM from a GPO startup script or an RMM tool.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File install.ps1 -Token "vigie1...." -Role workstation

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File install.ps1 -Uninstall            # keeps the state
  powershell -ExecutionPolicy Bypass -File install.ps1 -Uninstall -Purge     # deletes it too
#>
[CmdletBinding()]
param(
  # Enrollment token from `vigie-collector token create` (single use, 24 h by default).
  [string]$Token = "",
  [ValidateSet("server", "workstation", "imaging")]
  [string]$Role = "workstation",
  # The agent executable to install; default: the one next to this script.
  [string]$Source = "",
  [switch]$Uninstall,
  [switch]$Purge
)
$ErrorActionPreference = "Stop"

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  throw "Run this script as administrator (or as SYSTEM from a deployment tool)."
}

$installDir = Join-Path $env:ProgramFiles "Vigie"
$exe = Join-Path $installDir "vigie-agent.exe"

if ($Uninstall) {
  if (-not (Test-Path $exe)) { throw "Vigie agent is not installed in $installDir." }
  $arguments = @("service", "uninstall")
  if ($Purge) { $arguments += "--purge" }
  & $exe @arguments
  if ($LASTEXITCODE -ne 0) { throw "vigie-agent service uninstall failed ($LASTEXITCODE)." }
  Remove-Item -Recurse -Force $installDir
  Write-Output "Vigie agent removed."
  exit 0
}

if ($Source -eq "") {
  $found = Get-ChildItem -Path $PSScriptRoot -Filter "vigie-agent*.exe" | Select-Object -First 1
  if ($null -eq $found) { throw "No vigie-agent*.exe next to this script; give -Source." }
  $Source = $found.FullName
}

# An upgrade: stop the running service before replacing its executable.
$service = Get-Service -Name "VigieAgent" -ErrorAction SilentlyContinue
if ($null -ne $service -and $service.Status -ne "Stopped") {
  & $exe service stop
}
New-Item -ItemType Directory -Force -Path $installDir | Out-Null
Copy-Item -Force $Source $exe

$arguments = @("service", "install", "--role", $Role)
if ($Token -ne "") { $arguments += @("--token", $Token) }
& $exe @arguments
if ($LASTEXITCODE -ne 0) { throw "vigie-agent service install failed ($LASTEXITCODE)." }
& $exe service status
