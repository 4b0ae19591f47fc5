pragma solidity ^0.4.11;

contract Payout {
    address[] investors;
    uint256[] amounts;
    address owner;

    function Payout() {
        owner = msg.sender;
    }

    function invest() payable {
        investors.push(msg.sender);
        amounts.push(msg.value);
    }

    function payAll() {
        if (msg.sender != owner) throw;
        for (uint256 i = 0; i < investors.length; i++) {
            if (!investors[i].send(amounts[i] * 2)) throw; // expect: denial-of-service
        }
    }
}
