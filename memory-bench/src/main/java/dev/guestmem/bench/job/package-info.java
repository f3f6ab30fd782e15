/**
 * The main job ({@code ./guestmem run}): the RISC-V {@code virt} machine running the guest programs on several vCPU
 * threads through their soft TLBs while a display takes the framebuffer's VGA dirty bits, a device thread changes the
 * map under them, a vhost-user disk reads into guest RAM and a live migration copies RAM away; then a summary table
 * and an HTML report with plots.
 */
package dev.guestmem.bench.job;
