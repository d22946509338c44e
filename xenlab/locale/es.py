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
