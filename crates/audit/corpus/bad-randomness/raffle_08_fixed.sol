// SPDX-License-Identifier: MIT
pragma solidity ^0.8.18;

// The winner is picked from oracle randomness delivered in a callback.
contract Raffle {
    address[] public entrants;
    address public immutable coordinator;

    constructor(address oracle) {
        coordinator = oracle;
    }

    function enter() external payable {
        require(msg.value == 1 ether, "ticket");
        entrants.push(msg.sender);
    }

    function fulfill(uint256 randomness) external {
        require(msg.sender == coordinator, "coordinator");
        require(entrants.length >= 10, "too few");
        address winner = entrants[randomness % entrants.length];
        delete entrants;
        payable(winner).transfer(address(this).balance);
    }
}
