# package.cmake -- `cpack -G DEB` in the build tree: one godwit_VERSION_ARCH.deb with the
# daemons, godwitctl, systemd units (Type=notify), /etc/godwit/godwit.conf (a conffile), man
# pages and bash completion. deploy/ keeps working from the build tree: the packaged units
# are copies of deploy/*.service with /usr/bin paths. Test: tests/integration/test_package.sh.
set(GW_PKG_DIR ${CMAKE_BINARY_DIR}/pkg)
foreach(unit godwit-agent godwit-coordinator)
  file(READ ${CMAKE_SOURCE_DIR}/deploy/${unit}.service text)
  string(REPLACE "/usr/local/bin/" "/usr/bin/" text "${text}")
  file(WRITE ${GW_PKG_DIR}/${unit}.service "${text}")
  install(FILES ${GW_PKG_DIR}/${unit}.service DESTINATION lib/systemd/system COMPONENT godwit)
endforeach()
configure_file(${CMAKE_SOURCE_DIR}/deploy/pkg/conffiles ${GW_PKG_DIR}/conffiles COPYONLY)

# man pages, gzipped as Debian wants them
set(GW_MANS godwitctl.8 godwit-agent.8 godwit-coordinator.8 godwit.conf.5)
set(GW_MAN_GZ)
foreach(m ${GW_MANS})
  add_custom_command(OUTPUT ${GW_PKG_DIR}/${m}.gz
    COMMAND gzip -9nc ${CMAKE_SOURCE_DIR}/docs/man/${m} > ${GW_PKG_DIR}/${m}.gz
    DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/${m} COMMENT "gzip ${m}")
  list(APPEND GW_MAN_GZ ${GW_PKG_DIR}/${m}.gz)
  string(REGEX MATCH "[0-9]$" sec ${m})
  install(FILES ${GW_PKG_DIR}/${m}.gz DESTINATION share/man/man${sec})
endforeach()
add_custom_target(gw_man ALL DEPENDS ${GW_MAN_GZ})

install(FILES ${CMAKE_SOURCE_DIR}/deploy/godwit.conf DESTINATION /etc/godwit)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/pkg/godwitctl.bash
  DESTINATION share/bash-completion/completions RENAME godwitctl)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/corosync.conf ${CMAKE_SOURCE_DIR}/deploy/godwit.conf
  DESTINATION share/doc/godwit/examples)
install(FILES ${CMAKE_SOURCE_DIR}/LICENSE DESTINATION share/doc/godwit RENAME copyright)

set(CPACK_PACKAGE_NAME godwit)
set(CPACK_PACKAGE_VENDOR "Godwit")
set(CPACK_PACKAGE_CONTACT "Godwit maintainers <godwit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "live migration and HA for KVM clusters")
set(CPACK_PACKAGE_DESCRIPTION "Godwit: per-host agents run KVM micro-VMs and libvirt domains and \
live-migrate them; a coordinator on every host (corosync CPG + votequorum) fences failed \
hosts, restarts their HA VMs, drains hosts for maintenance and balances load.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "corosync")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "fence-agents")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libvirt-daemon-system")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${GW_PKG_DIR}/conffiles
  ${CMAKE_SOURCE_DIR}/deploy/pkg/postinst ${CMAKE_SOURCE_DIR}/deploy/pkg/prerm
  ${CMAKE_SOURCE_DIR}/deploy/pkg/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
