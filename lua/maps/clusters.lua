-- Per-cluster settings, by "<resource group>/<cluster name>" (case does not matter).
--
-- Operators edit this file and reload (`aurora reload` or SIGHUP). Settings:
--   insecure_skip_tls_verify = true   do NOT verify the API server's certificate for this
--                                     cluster. Aurora verifies every AKS API server against the
--                                     cluster CA from its kubeconfig; this switch exists for a
--                                     cluster behind a TLS-inspecting proxy that cannot be fixed
--                                     otherwise. Every request made with it logs a warning.
--
-- Example:
--   ["rg-lab/aks-lab"] = { insecure_skip_tls_verify = true },
return {
}
