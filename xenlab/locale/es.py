"""The exercises in Spanish: the replies (MESSAGES) and each exercise's texts (EXERCISES).

MESSAGES has the keys of ``xenlab.i18n.MESSAGES`` (same {placeholders}). EXERCISES maps
an exercise's number to its "question", "hint", "explanation", "options" (a list in the
English order, or for shuffled options a dict from each English option to its
translation) and "option_hints" (by letter); a seeded question's {placeholders} are the
names in its ``params`` (xenlab/exercises.py). What is missing stays English.

Real Xen: (none: teaching material)
"""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, str] = {
    "exercise": "Ejercicio {ex_id}: ",
    "answer_choice": "Responde con la letra de una opción, entre comillas, o con su texto.",
    "not_answered": "Aún sin responder: sustituye el ... por tu respuesta ({format}) y vuelve "
                    "a ejecutar la celda.",
    "hint": " Pista: {hint}",
    "correct": "Correcto: {shown}{note}.",
    "not_quite": "Casi: {note}.",
    "not_quite_custom": "Casi: {note}",
    "not_it": "Casi: {shown}{note} no es la respuesta.",
    "your_answer": "tu respuesta",
    "check_failed": "la propia comprobación falló ({error})",
    "format_number": "un número, decimal o hexadecimal con 0x",
    "format_name": "un nombre, entre comillas",
    "format_state": "letras de State, entre comillas, como las muestra xl list",
    "format_order": "las letras en orden, entre comillas",
    "format_choice": "la letra de una opción, entre comillas",
    "format_custom": "lo que pide el ejercicio",
    "read_string": " (diste una cadena; se leyó como el número {value}: un número sin "
                   "comillas también sirve)",
    "truth_value": "{given} es un valor de verdad, no un número",
    "not_whole": "{given} no es un número entero",
    "not_number_try": "{given} no es un número (prueba con 8192 o 0x2000)",
    "not_number": "{given} no es un número",
    "not_name": "{given} no es un nombre: responde con una cadena entre comillas",
    "not_state_type": '{given} no es un estado (State): responde con una letra entre '
                      'comillas, como "r"',
    "xl_list_form": " (la forma de xl list de {letters})",
    "no_letter": "ninguna letra",
    "not_state": "{given} no es un estado (State): las letras son r b p s c d, como en el "
                 "--p--- de xl list",
    "not_order_type": '{given} no es un orden: responde con letras en una cadena, como '
                      '"b a c"',
    "not_order_letters": "{given} no es un orden: usa solo las letras",
    "not_option_type": '{given} no es una opción: responde con una letra entre comillas, '
                       'como "a"',
    "not_option": "{given} no es ninguna de las opciones: responde con una letra (de la a a "
                  "la {last}) o con el texto de una opción",
    "missing_seabios": "El hvmloader real de Xen y SeaBIOS no están instalados aquí (apt install "
                       "xen-utils-4.17 seabios; en otras versiones, el xen-utils-4.x de su Xen); "
                       "el firmware didáctico de arriba muestra los mismos pasos.",
    "missing_pvh-grub": "GRUB PVH no está instalado aquí (apt install grub-xen-host); el capítulo"
                        " sigue sin él.",
    "missing_pv-grub": "GRUB PV no está instalado aquí (apt install grub-xen-host); el capítulo "
                       "sigue sin él.",
    # ---------------------------------------------------------------- xenlab.handson
    # Los veredictos de los ejercicios prácticos (ver xenlab/i18n.py).
    "hx_correct": "Correcto: ",
    "hx_not_yet": "Aún no: ",
    "hx_not_answered": "Aún sin responder: ",
    "hx_assembler_refused": "el ensamblador rechazó tu código: {error}",
    "hx_attempt_failed": "el intento falló con {error}",
    "hx_need_str": "{what} debe ser una cadena (texto entre comillas), no {type}",
    "hx_the_code": "el código",
    "hx_the_config": "la configuración",
    "hx_create_failed": "xl create falló: {error}",
    "hx_xl_refused": "xl create la rechazó: {error}",
    "hx_crashed": "caído",
    "hx_guest_crashed": "el invitado se cayó: {crash}.",
    "hx_no_exits": "ninguna",
    "hx_no_leaves": "ninguna",
    "hx_no_domains": "ninguno",
    "hx_nothing": "nada",
    "hx_refused": "rechazado",
    "hx_it_made": "; hizo {names}",
    "hx_screen_crashed": " El invitado se cayó: {crash}. ¿Siguió la CPU más allá de tu última "
                         "instrucción, hasta tus datos o los ceros que vienen detrás? Termina con "
                         "cli; hlt antes de cualquier dato.",
    "hx_screen_empty_ports": "la pantalla quedó vacía: tu código escribió en el/los puerto(s) "
                             "{ports}, pero nunca le pidió a la BIOS que imprimiera. int $0x10 "
                             "con AH = 0x0E imprime el carácter de AL (teletipo).",
    "hx_screen_empty": "la pantalla quedó vacía: imprime cada carácter con int $0x10, AH = 0x0E, "
                       "AL = el carácter.",
    "hx_screen_shows": "la pantalla muestra {shown}, no {expect}.",
    "hx_boot_hint": "escribe código de 16 bits que imprima el texto en la pantalla con int $0x10 "
                    "(AH = 0x0E, AL = el carácter) y que luego se detenga con cli; hlt.",
    "hx_boot_too_big": "tu código ensamblado ocupa {size} bytes; un sector de arranque admite 510 "
                       "antes de su firma 55AA",
    "hx_boot_no_halt": " (no se detuvo: termina con cli; hlt)",
    "hx_boot_right": "la BIOS cargó tu sector de arranque de {size} bytes en 0000:7C00 y la "
                     "pantalla muestra {expect}, con {exits} salidas de VM desde tu código{tail}.",
    "hx_cpuid_hint": "ejecuta cpuid con EAX = 0x40000000; Xen responde con su firma en EBX, ECX, "
                     "EDX (4 caracteres cada uno, primero el byte más bajo). Imprime esos 12 "
                     "caracteres con int $0x10 (AH = 0x0E) y luego cli; hlt.",
    "hx_cpuid_typed": "la pantalla muestra la firma, pero tu código nunca consultó la hoja "
                      "0x40000000 de CPUID: imprime lo que responde Xen, no una cadena que "
                      "tecleaste.",
    "hx_cpuid_right": "la hoja 0x40000000 de CPUID fue una salida de VM que Xen respondió él "
                      "mismo, y tu sector de arranque imprimió {signature}: este invitado sabe "
                      "que se ejecuta sobre Xen, lo primero que comprueban los controladores PV "
                      "de un invitado HVM.",
    "hx_cpuid_never_asked": "tu código nunca consultó la hoja 0x40000000 de CPUID (hojas "
                            "consultadas: {asked}). {screen}",
    "hx_cpuid_asked": "consultaste la hoja 0x40000000; {screen} Imprime EBX, luego ECX, luego "
                      "EDX, primero el byte más bajo (shr $8 entre bytes).",
    "hx_exits_hint": "escribe tu predicción (un número entero) antes de ejecutar el código y "
                     "luego ejecuta la celda: la ejecución cuenta cada salida de VM del código "
                     "después de que la BIOS salte a él.",
    "hx_exits_not_whole": "la predicción debe ser un número entero, no {given}",
    "hx_exits_who": "{xen} atendidas por Xen, {dm} por el modelo de dispositivos",
    "hx_exits_crashed": "el código se cayó antes de terminar ({crash}); corrígelo primero. "
                        "Salidas hasta ahora: {summary}.",
    "hx_exits_right": "{n} salidas de VM ({who}): {summary}.",
    "hx_more": "más",
    "hx_fewer": "menos",
    "hx_exits_wrong": "predijiste {guess}; la ejecución midió {n} ({off}): {summary}; {who}. ¿Qué "
                      "instrucciones tuyas salen del invitado?",
    "hx_idle_hint": "una vez armado el temporizador, el invitado no tiene nada que hacer hasta el "
                    "evento del temporizador: devuélvele la CPU a Xen con una hiperllamada "
                    "sched_op (EDI = el comando, ESI = su argumento, luego HYPERCALL "
                    "__HYPERVISOR_sched_op). ¿Qué comando SCHEDOP_ espera un evento?",
    "hx_idle_hlt": " hlt es una instrucción privilegiada: un kernel PV se ejecuta en el anillo 3 "
                   "y Xen responde con #GP, así que el invitado se cae. Pídeselo a Xen.",
    "hx_idle_yields": " Llamó a sched_op(SCHEDOP_yield) {count} veces: yield deja la vCPU "
                      "ejecutable, así que vuelve enseguida.",
    "hx_idle_spins": " No hizo ninguna llamada a sched_op: da vueltas en un bucle.",
    "hx_idle_running": "después de {run_ms} ms el invitado seguía en tu código y había usado la "
                       "CPU todo el tiempo ({cpu_ms} ms).{how} Bloquea la vCPU hasta que llegue "
                       "un evento y deja que el evento del temporizador ponga fin a la espera.",
    "hx_idle_stopped": "el invitado se detuvo dentro de tu código (nunca llegó a la línea "
                       "siguiente): no lo apagues, solo espera.",
    "hx_idle_at_once": "tu código volvió enseguida, sin esperar al temporizador de los "
                       "{deadline_ms} ms ({cpu_ms} ms de CPU, ningún SCHEDOP_block): el invitado "
                       "nunca devolvió la CPU.",
    "hx_idle_right": "sched_op({command}) bloqueó la vCPU hasta que VIRQ_TIMER saltó a los "
                     "{deadline_ms} ms; usó {cpu_us} us de CPU en total. Así queda inactivo un "
                     "kernel PV.",
    "hx_console_hint": "llama a HYPERVISOR_console_io(CONSOLEIO_write, count, buffer): EDI = "
                       "CONSOLEIO_write, ESI = msg_len, RDX = la dirección de msg (lea msg(%rip), "
                       "%rdx), y luego HYPERCALL __HYPERVISOR_console_io.",
    "hx_console_bad_expect": "el texto esperado debe tener de 1 a 60 caracteres imprimibles, sin "
                             "comillas ni barras invertidas",
    "hx_console_right": "la consola de Xen muestra {line}: tu hiperllamada console_io (número 18) "
                        "pasó por la página de hiperllamadas.",
    "hx_console_none": "tu código no hizo ninguna hiperllamada console_io (número 18){made}: "
                       "HYPERCALL __HYPERVISOR_console_io.",
    "hx_console_returned": "console_io devolvió {ret} ({args}): revisa EDI (el comando), ESI (la "
                           "cuenta) y RDX (la dirección del búfer).",
    "hx_console_count": "console_io escribió {count} bytes; msg tiene {size} bytes con su salto "
                        "de línea (msg_len), y Xen imprime una línea solo cuando ve el salto de "
                        "línea: ESI es la cuenta.",
    "hx_console_shows": "console_io se ejecutó, pero la consola de Xen muestra {shown}, no "
                        "{expect}: ESI es el número de bytes (msg_len); RDX, dónde están (msg).",
    "hx_pte_hint": "pídele a Xen que reescriba la entrada L1 de scratch: un mmu_update cuya "
                   "petición (un struct mmu_update {fields} en mmu_req) indique la dirección de "
                   "máquina de la entrada (RSI) y la nueva entrada (construida a partir del marco "
                   "de other, RCX).",
    "hx_pte_right": "Xen validó tu entrada (ptr {ptr}, val {val}: un marco del dominio, no una "
                    "tabla de páginas) y la escribió: scratch lee ahora la página de other. Así "
                    "cambia un kernel PV sus tablas de páginas.",
    "hx_pte_not_present": "Xen escribió tu entrada {val}, pero su bit PRESENT (1) está a cero: "
                          "scratch ya no está mapeada, y leerla provocó un fallo de página "
                          "({crash}).",
    "hx_pte_none": "tu código no hizo ninguna hiperllamada mmu_update (número 1){made}: HYPERCALL "
                   "__HYPERVISOR_mmu_update.",
    "hx_pte_check_args": " Revisa los cuatro argumentos: RDI = &mmu_req, RSI = 1, RDX = 0, R10 = "
                         "DOMID_SELF.",
    "hx_pte_virtual_ptr": " ptr debe ser la dirección de máquina de la entrada L1 (RSI cuando "
                          "empieza tu código), no una dirección virtual.",
    "hx_pte_not_owned": " val debe indicar el marco de máquina de other: RCX << 12, más los bits "
                        "de flags.",
    "hx_pte_page_table": " Ese marco es una tabla de páginas: Xen nunca deja que un invitado la "
                         "mapee con permiso de escritura.",
    "hx_pte_reserved_bits": " En val solo pueden estar activos los bits de flags bajos y el "
                            "número de marco.",
    "hx_pte_returned": "mmu_update devolvió {ret} ({why}).{hint}",
    "hx_pte_unchanged": "mmu_update tuvo éxito, pero scratch sigue mostrando su propia página: "
                        "val debe mapear el marco de other (RCX << 12) con PRESENT (1), y ptr "
                        "debe ser la entrada L1 de scratch (RSI).",
    "hx_config_hint": "corrige la configuración error a error: ejecuta la celda, lee lo que dice "
                      "xl y cambia esa línea.",
    "hx_config_other_name": "xl creó {got}, no un dominio llamado {name}: la línea name decide lo "
                            "que muestra xl list.",
    "hx_config_hvm": 'xl construyó un invitado HVM (type = "hvm"): arranca un firmware desde un '
                     "disco e ignora kernel. pv-hello es un kernel PV.",
    "hx_config_gone": "el invitado se ejecutó y se apagó, y xl list ya no lo muestra: on_poweroff "
                      "decide qué pasa entonces (destroy, restart, preserve).",
    "hx_config_no_greeting": "el invitado nunca imprimió su saludo en su consola: ¿es su kernel "
                             "el de pv-hello?",
    "hx_config_right": "{name} arrancó, imprimió {line}, se apagó y sigue en la lista en el "
                       "estado {state}.",
    "hx_credit_hint": "escribe la configuración de heavy: una copia de la de light con su propio "
                      "nombre y un peso.",
    "hx_credit_no_heavy": "no hay ningún dominio llamado 'heavy': pon name = \"heavy\".",
    "hx_credit_crashed": "heavy se cayó: {crash} (¿es su kernel el de pv-spin?)",
    "hx_credit_measured": "heavy (peso {weight}) recibió el {share} % de la CPU, light (peso "
                          "{light_weight}) el {light_share} %",
    "hx_credit_right": "{measured} en los primeros 70 ms.",
    "hx_credit_wrong": "{measured}; el objetivo es el {goal} %. El planificador credit reparte en "
                       "proporción a los pesos: dale a heavy un peso mayor que el de light.",
    "hx_fe_hint": "escribe una función answer(fe) que conceda fe.ring_pfn al backend, reserve un "
                  "canal de eventos para él y escriba ring-ref, event-channel y, por último, "
                  "state = 3 (Initialised).",
    "hx_fe_not_whole": "{call}: {what} debe ser un número entero, no {given}",
    "hx_fe_not_a_page": "grant_access: el pfn {pfn} no es una página de este invitado",
    "hx_fe_alloc_failed": "alloc_unbound({domid}) falló: {error}",
    "hx_fe_bad_key": "write: la clave es un nombre de nodo como 'ring-ref', no {given}",
    "hx_fe_log_grant": "concesión ref {ref}: d{domid} puede usar el pfn {pfn}{read_only}",
    "hx_fe_read_only": " en solo lectura",
    "hx_fe_log_port": "puerto de canal de eventos {port} para d{domid}",
    "hx_fe_not_function": "la respuesta es una función answer(fe), no {type}",
    "hx_fe_raised": "tu paso lanzó {error}",
    "hx_fe_right": "blkback mapeó tu concesión, enlazó tu puerto y pasó a 4 (Connected). Hiciste: "
                   "{did}.",
    "hx_fe_read_only_refused": " blkback mapea el anillo en lectura y escritura: rechaza una "
                               "concesión de solo lectura.",
    "hx_fe_wrong_domain": " La concesión debe nombrar al dominio que la mapea: el del backend "
                          "(fe.backend_id), no el propio invitado.",
    "hx_fe_bad_ref": " ring-ref debe ser la ref que devolvió grant_access.",
    "hx_fe_state_last": " blkback lee ring-ref y event-channel en cuanto ve el estado 3: "
                        "escríbelos primero, y el estado al final.",
    "hx_fe_port_domain": " El puerto debe reservarse para el dominio del backend "
                         "(alloc_unbound(0)).",
    "hx_fe_gave_up": "blkback se rindió con el error {error} y pasó al estado {state}.{hint} "
                     "Hiciste: {did}.",
    "hx_fe_waiting": "blkback sigue en el estado {state} (InitWait): actúa cuando el nodo state "
                     "del frontend dice 3 (Initialised). Hiciste: {did}.",
    "hx_session_hint": 'una lista de líneas de comandos de xl como ["list"], ejecutadas en orden: '
                       "un comando por cada objetivo que aún no se cumple.",
    "hx_session_not_a_list": "la respuesta es una lista de líneas de comandos de xl (cadenas), "
                             'como ["pause web"]',
    "hx_session_failed": "`xl {command}` falló: {error}",
    "hx_goal_running": "en ejecución",
    "hx_goal_paused": "en pausa",
    "hx_gone": "ya no está",
    "hx_session_still_listed": "{name} sigue en la lista (estado {state}); el objetivo es que ya "
                               "no esté.",
    "hx_session_gone": "{name} ya no está; el objetivo es que esté {goal}: un dominio destruido "
                       "no puede volver (xl create construiría uno nuevo).",
    "hx_session_not_paused": "{name} muestra State {state}: no está en pausa (p).",
    "hx_session_still_paused": "{name} muestra State {state}: sigue en pausa.",
    "hx_session_right": "xl list muestra ahora {summary}.",
}

EXERCISES: dict[str, dict[str, Any]] = {
    # ------------------------------------------------------------ 00 · Empieza aquí
    "0.1": {
        "question": "¿Cuántas páginas de 4 KiB posee el invitado pv-hello, de 32 MiB?",
        "hint": "32 MiB = 32 * 1024 KiB; una página son 4 KiB.",
        "explanation": "xl list muestra 32 (MiB); Xen cuenta la memoria del invitado en "
                       "páginas (tot_pages).",
    },
    # ------------------------------------------------------------ 01 · ¿Por qué virtualizar?
    "1.1": {
        "question": "Una empresa tiene {n} servidores físicos, cada uno ocupado de media un "
                    "{util} % del tiempo. ¿Cuántos anfitriones necesita si carga cada "
                    "anfitrión hasta el {target} %? (semilla {seed})",
        "hint": "trabajo total = servidores x carga; divide entre lo que puede llevar un "
                "anfitrión; redondea hacia arriba.",
    },
    "1.2": {
        "question": "¿Cuántos MiB bajó free_memory en xl info al crear los cuatro invitados "
                    "de 64 MiB?",
        "hint": "mira free_memory antes y después de crearlos.",
    },
    "1.3": {
        "question": "pv-crash ejecutó una instrucción prohibida. ¿Qué les pasó a los demás "
                    "invitados?",
        "options": ["también se cayeron",
                    "quedaron en pausa hasta que se destruyó pv-crash",
                    "nada: siguieron ejecutándose; solo se cayó pv-crash"],
        "hint": "mira xl list después de que muriera pv-crash.",
        "option_hints": {"a": "mira xl list después del fallo: ¿qué invitados siguen "
                              "ejecutándose?",
                         "b": "nadie los pausó: compara su columna State antes y después "
                              "del fallo."},
        "explanation": "Xen aísla los dominios: un fallo se entrega solo al dominio que lo "
                       "causó, o lo mata solo a él.",
    },
    # ------------------------------------------------------------ 02 · El hipervisor
    "2.1": {
        "question": "El dominio A tiene peso {a} y el dominio B tiene peso {b}; ambos ejecutan "
                    "un bucle activo en una sola CPU. ¿Qué parte de la CPU recibe A, en "
                    "porcentaje (redondeado)? (semilla {seed})",
        "hint": "la parte es proporcional al peso: A / (A + B).",
    },
    "2.2": {
        "question": "El Dom0 tiene 256 MiB. ¿Cuántos marcos de 4 KiB figuran en la tabla de "
                    "marcos de Xen como propiedad del dominio 0?",
        "hint": "256 MiB = 256 * 1024 KiB; un marco son 4 KiB.",
    },
    "2.3": {
        "question": "¿Dónde se ejecutan los controladores de disco y de red de un anfitrión "
                    "Xen?",
        "options": ["en el hipervisor", "en el Dom0", "en el propio hardware de cada DomU"],
        "hint": "¿en qué dominio se ejecutaban los backends de los controladores divididos?",
        "option_hints": {"a": "vuelve a leer el log de arranque de Xen: prepara la memoria y "
                              "las CPU, y no sondea ningún disco.",
                         "c": "un DomU solo recibe dispositivos virtuales; ¿quién es el dueño "
                              "de los reales?"},
        "explanation": "Xen no tiene controladores de dispositivos; el kernel del Dom0 maneja "
                       "el hardware.",
    },
    # ------------------------------------------------------------ 03 · Dom0 y los DomU
    "3.1": {
        "question": "El dominio 2 intenta xenstore-write /local/domain/1/data/x hi. ¿Con qué "
                    "error responde xenstored (el nombre, como ENOENT)?",
        "hint": "los permisos del nodo son (n1,r0): ¿quién más puede escribir? Pruébalo con "
                "store.write(path, value, domid=2).",
    },
    "3.2": {
        "question": "¿Qué letra muestra la columna State de xl list para un dominio creado "
                    "con xl create -p?",
        "hint": "mira el primer xl list de este cuaderno.",
    },
    "3.3": {
        "question": 'La configuración de un invitado tiene on_poweroff = "destroy". El '
                    "invitado se apaga solo. ¿Qué muestra xl list para él?",
        "options": ["estado s (apagado)", "estado p (en pausa)", "nada: ya no está"],
        "hint": "ejecuta el invitado y mira xl list; el log de xl dice lo que hizo.",
        "option_hints": {"a": 'eso es lo que deja on_poweroff = "preserve".',
                         "b": "p es un dominio creado con -p, o pausado con xl pause."},
        "explanation": "el toolstack del Dom0 destruye el dominio cuando se apaga.",
    },
    # ------------------------------------------------------------ 04 · Paravirtualización
    "4.1": {
        "question": "¿En qué desplazamiento, en bytes, de la página de hiperllamadas está el "
                    "fragmento (stub) de {name}? (semilla {seed})",
        "hint": "cada fragmento ocupa 32 bytes; el de la hiperllamada número nr está en "
                "32 * nr (los números están en Hypercall).",
    },
    "4.2": {
        "question": "¿Cuántas hiperllamadas hizo pv-spin en toda su ejecución (el anfitrión "
                    "solo de arriba)?",
        "hint": "suma las cuentas de hypercall_counts(solo.trace) para el domid de pv-spin.",
    },
    "4.3": {
        "question": "Un kernel PV no tiene nada que hacer hasta su próximo temporizador. ¿Qué "
                    "hace?",
        "options": ["ejecuta hlt", "llama a sched_op(SCHEDOP_block)",
                    "da vueltas en un bucle activo"],
        "hint": "¿cuál de estas se le permite a un kernel que no está en el anillo 0?",
        "option_hints": {"a": "hlt es privilegiada: recuerda lo que le pasó a pv-crash.",
                         "c": "dar vueltas quema tiempo de CPU que otro dominio podría "
                              "usar."},
        "explanation": "hlt es privilegiada (pv-crash murió por ella); el bucle activo "
                       "desperdicia la CPU.",
    },
    # ------------------------------------------------------------ 05 · Controladores divididos
    "5.1": {
        "question": "El blkback del Dom0 escribió el sector 100 en nombre de un invitado. ¿De "
                    "qué domid venía la petición?",
        "hint": 'la traza lo tiene: lab.trace.select(kind="io"), registro '
                "blkback.disk_write, campo dom; o bien: ¿qué invitado tiene un disco?",
    },
    "5.2": {
        "question": "¿Cuál es el número del XenbusState {state}? (semilla {seed})",
        "hint": "lee el handshake impreso arriba: cada estado se escribe en xenstore como su "
                "número.",
    },
    "5.3": {
        "question": "pv-net-a envía un ping a pv-net-b. ¿Qué camino sigue la trama?",
        "options": ["directamente de la memoria de pv-net-a a la de pv-net-b",
                    "netfront -> netback en el Dom0 -> puente xenbr0 -> netback -> netfront",
                    "a través del propio controlador de red de Xen"],
        "hint": "sigue la traza del ping: ¿qué dominio maneja cada trama?",
        "option_hints": {"a": "los invitados no comparten memoria a menos que uno conceda una "
                              "página: ¿de quién eran las concesiones que mostró la traza?",
                         "c": "Xen no tiene controlador de red: ¿qué dominio tiene el "
                              "puente?"},
        "explanation": "los invitados no comparten nada directamente; la llevan los backends "
                       "y el puente del Dom0.",
    },
    # ------------------------------------------------------------ 06 · Virtualización completa
    "6.1": {
        "question": '¿Quién atendió los accesos del invitado al puerto {port}: "xen" (emulado '
                    'dentro del hipervisor) o "dm" (una ioreq al modelo de dispositivos)? '
                    "(semilla {seed})",
        "hint": "lo dice la traza: los registros vmexit del puerto {port} "
                '(hvm.trace.select(kind="vmexit", name="io")) nombran a su manejador.',
        "explanation": "Xen emula él mismo el PIT, los PIC, el RTC y el puerto 0xE9; los "
                       "puertos del disco, del puerto serie y de la VGA van al modelo de "
                       "dispositivos.",
    },
    "6.2": {
        "question": "¿Cuántas hiperllamadas hizo en total el invitado HVM hvm-hello?",
        "hint": "cuenta los registros de hiperllamada del domid del invitado HVM, o las "
                "salidas vmcall.",
        "explanation": "hvmloader pide la versión de Xen una vez a través de la página de "
                       "hiperllamadas; la BIOS y el sector de arranque nunca llaman a Xen.",
    },
    "6.3": {
        "question": "¿Qué permitió a Xen 3 ejecutar kernels invitados sin modificar?",
        "options": ["un traductor binario más rápido en el Dom0",
                    "extensiones del procesador (Intel VT-x, AMD-V) que atrapan las "
                    "instrucciones sensibles",
                    "una nueva ABI de hiperllamadas",
                    "ejecutar el kernel invitado en el anillo 3"],
        "option_hints": {"a": "Xen nunca tradujo el código del invitado; ¿quién provocó las "
                              "salidas de VM que contaste?",
                         "c": "un kernel sin modificar no hace ninguna hiperllamada.",
                         "d": "así se ejecutaban los kernels PV, y por eso había que "
                              "modificarlos."},
        "hint": "las salidas que contaste las produce el procesador.",
    },
    # ------------------------------------------------------------ 07 · El arranque HVM
    "7.1": {
        "question": "Ordena los pasos del firmware en el orden en que los ejecuta el invitado: "
                    'responde con las letras en orden, p. ej. answer = "a b c ...". '
                    "(semilla {seed})",
        "options": {"HVM Loader": "HVM Loader",
                    "hypercall page": "página de hiperllamadas (hypercall page)",
                    "E820 table": "tabla E820",
                    "POST": "POST",
                    "IVT and BDA": "IVT y BDA",
                    "INT 19h boot": "arranque con INT 19h",
                    "boot sector prints": "el sector de arranque imprime"},
        "hint": "la traza de arriba está en orden: primero hvmloader, después la BIOS.",
    },
    "7.2": {
        "question": '¿Quién atiende las lecturas del invitado en el puerto de datos IDE 0x1F0: '
                    '"xen" o "dm"?',
        "hint": "¿se emula el controlador IDE en el hipervisor? Los registros vmexit nombran "
                "al manejador.",
    },
    "7.2b": {
        "question": "La BIOS lee un sector con un solo `rep insw`: una salida de VM, una "
                    "ioreq. Si leyera ese mismo sector de 512 bytes con un bucle de "
                    "instrucciones `inw` sueltas, ¿cuántas ioreqs recibiría el puerto de "
                    "datos 0x1F0?",
        "hint": "cada in u out suelto que sale del invitado es su propia salida de VM y su "
                "propia ioreq; ¿cuántas palabras de 16 bits hay en 512 bytes?",
        "explanation": "una ioreq por cada inw: la instrucción de cadena ahorra 255 idas y "
                       "vueltas al modelo de dispositivos.",
    },
    # ------------------------------------------------------------ 08 · Lo que cambió
    "8.1": {
        "question": "¿Cuál es el id de fabricante PCI (vendor id) del dispositivo de "
                    "plataforma de Xen (un número; vale en hexadecimal, como 0x1234)?",
        "hint": "lee el desplazamiento 0 del espacio de configuración del dispositivo de "
                "plataforma, o mira la tabla PCI de arriba.",
        "explanation": "0x5853 es el id de fabricante PCI de XenSource.",
    },
    "8.2": {
        "question": "¿Qué le devolvió a pv-pubhdr la hiperllamada eliminada tmem_op?",
        "hint": "lee la consola de pv-pubhdr; ENOSYS es 38 y los errores vuelven en "
                "negativo.",
    },
    "8.3": {
        "question": "¿Qué tipo de invitado no tiene BIOS ni modelo de dispositivos, y usa "
                    "VT-x/AMD-V?",
        "options": ["PV", "HVM", "PVH", "PVHVM"],
        "hint": "¿qué tipo arranca su kernel directamente y aun así se ejecuta en el "
                "contenedor de hardware?",
        "option_hints": {"a": "PV arranca su kernel directamente, pero sin el contenedor de "
                              "hardware (sin VT-x).",
                         "b": "HVM arranca con hvmloader y una BIOS, con un modelo de "
                              "dispositivos.",
                         "d": "PVHVM es un invitado HVM con controladores PV: sigue teniendo "
                              "BIOS y modelo de dispositivos."},
    },
    # ------------------------------------------------------------ 09 · El gestor
    "9.1": {
        "question": "¿Qué comando xl ejecuta el botón Pause?",
        "options": ["xl shutdown <domid>", "xl pause <domid>", "xl destroy <domid>",
                    "xl save <domid>"],
        "option_hints": {"a": "shutdown le pide al invitado que se detenga él mismo; no "
                              "vuelve con Unpause.",
                         "c": "destroy acaba con el dominio para siempre.",
                         "d": "save escribe la memoria del invitado en un archivo y lo "
                              "termina."},
        "hint": "mira el log de xl de arriba.",
    },
    "9.2": {
        "question": "Crea de nuevo pv-spin y ponlo en pausa. ¿Qué letra muestra la columna "
                    "State?",
        "hint": "r en ejecución (running), b bloqueado (blocked), p en pausa (paused), "
                "s apagado (shut down); la tabla del panel lo muestra.",
    },
    # ------------------------------------------------------------ 10 · Glosario
    "10.1": {
        "question": "¿Qué término describe esta definición? (semilla {seed})\n  {meaning}",
        "option_hint": "{term} es: {definition}",
        "hint": "búscalo en la tabla de arriba.",
    },
    "10.2": {
        "question": "¿Cuál de estos se ejecuta en el Dom0, y no en Xen ni en el invitado?",
        "options": ["el planificador credit", "el modelo de dispositivos", "hvmloader",
                    "blkfront"],
        "hint": "Xen no tiene controladores de dispositivos; ¿qué emula el PC de un "
                "invitado HVM?",
        "option_hints": {"a": "el planificador es parte del propio Xen.",
                         "c": "hvmloader se ejecuta dentro del invitado HVM, como su primer "
                              "firmware.",
                         "d": "blkfront es la mitad del invitado en el controlador "
                              "dividido."},
    },
    # ------------------------------------------------------------ 11 · Linux en un DomU
    "11.1": {
        "question": "El Linux de Debian hizo decenas de miles de hiperllamadas mmu_update para "
                    "arrancar. ¿Por qué un kernel PV le pide a Xen que escriba las entradas "
                    "de su tabla de páginas?",
        "options": ["es más rápido que escribir las entradas él mismo",
                    "Xen le mantiene en solo lectura sus tablas de páginas y comprueba cada "
                    "entrada: un marco que no es del invitado, o un mapeo con escritura de "
                    "una de sus propias tablas de páginas, le permitiría alcanzar memoria "
                    "que no es suya",
                    "Linux no tiene código para escribir tablas de páginas"],
        "hint": "piensa en qué rechazó check_l1e arriba, y por qué.",
        "option_hints": {"a": "una hiperllamada por entrada es más lenta que una escritura en "
                              "memoria: Xen paga ese precio por seguridad, no por "
                              "velocidad.",
                         "c": "el mismo kernel escribe sus tablas de páginas directamente "
                              "sobre el hardware real (native_set_pte)."},
        "explanation": "la MMU PV es el corazón del kernel modificado: Xen valida cada entrada "
                       "(mod_l1_entry) para que el invitado solo mapee sus propios marcos.",
    },
}
