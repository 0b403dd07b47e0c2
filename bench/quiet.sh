# Sourced by run.sh and profile.sh: waiting for a quiet machine before a measurement.
# Expects WAIT_IDLE (seconds) to be set by the caller.

# Percentage of all CPU time that was busy over one second (everything, not just us).
busy_pct() {
    local a b c d e f g t1 i1 t2 i2
    read -r _ a b c d e f g _ < /proc/stat; t1=$((a + b + c + d + e + f + g)); i1=$((d + e))
    sleep 1
    read -r _ a b c d e f g _ < /proc/stat; t2=$((a + b + c + d + e + f + g)); i2=$((d + e))
    echo $((100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}

# Wait (up to WAIT_IDLE seconds) for a quiet machine; echo the last busy level seen.
settle() {
    local busy deadline=$((SECONDS + WAIT_IDLE))
    busy="$(busy_pct)"
    while ((busy >= 10 && SECONDS < deadline)); do busy="$(busy_pct)"; done
    echo "$busy"
}
